import { createContext, useCallback, useContext, useEffect, useMemo, useState } from "react";
import { api, clearSession, getUsername, hasSession, setSession, type Role } from "../lib/api";

interface AuthState {
  /** True while the browser holds a session cookie (the token itself is HttpOnly). */
  signedIn: boolean;
  username: string | null;
  /**
   * What the server lets this account do: from the login's answer, and on every page load from
   * `GET /api/auth/me` (so a demotion shows after a reload). `null` until known.
   */
  role: Role | null;
  /** The bootstrap admin of `ADMIN_USERNAME`: its password lives in the server's environment. */
  bootstrap: boolean;
  login: (username: string, password: string) => Promise<void>;
  /** Change one's own password; the server answers with a new session, kept here. */
  changePassword: (current: string, next: string) => Promise<void>;
  logout: () => void;
  /** Forget the session because the server refused it (a 401). */
  expire: () => void;
  /** True after expire(), until the next login or logout: the login page says why. */
  expired: boolean;
}

const AuthContext = createContext<AuthState | null>(null);

export function AuthProvider({ children }: { children: React.ReactNode }) {
  const [signedIn, setSignedIn] = useState<boolean>(() => hasSession());
  const [username, setUsername] = useState<string | null>(() => getUsername());
  const [expired, setExpired] = useState(false);
  const [role, setRole] = useState<Role | null>(null);
  const [bootstrap, setBootstrap] = useState(false);
  // A page load with a session: ask the server who it is (a 401 ends the session as usual).
  useEffect(() => {
    if (!signedIn || role !== null) return;
    let live = true;
    api
      .me()
      .then((me) => {
        if (!live) return;
        setRole(me.role);
        setBootstrap(me.bootstrap);
        setUsername(me.username);
      })
      .catch(() => {});
    return () => {
      live = false;
    };
  }, [signedIn, role]);
  const login = useCallback(async (u: string, p: string) => {
    const res = await api.login(u, p);
    setSession(res.username ?? u);
    setSignedIn(true);
    setUsername(res.username ?? u);
    setRole(res.role ?? null);
    setBootstrap(false);
    setExpired(false);
    // Whether it is the bootstrap admin: the login's answer does not say.
    api
      .me()
      .then((me) => setBootstrap(me.bootstrap))
      .catch(() => {});
  }, []);
  const changePassword = useCallback(async (current: string, next: string) => {
    const res = await api.changePassword(current, next);
    setSession(res.username);
    setRole(res.role);
  }, []);
  const logout = useCallback(() => {
    // The server clears the HttpOnly cookie; forget this side at once either way.
    api.logout().catch(() => {});
    clearSession();
    setSignedIn(false);
    setUsername(null);
    setRole(null);
    setBootstrap(false);
    setExpired(false);
  }, []);
  const expire = useCallback(() => {
    clearSession();
    setSignedIn(false);
    setRole(null);
    setExpired(true);
  }, []);
  const value = useMemo(
    () => ({ signedIn, username, role, bootstrap, login, changePassword, logout, expire, expired }),
    [signedIn, username, role, bootstrap, login, changePassword, logout, expire, expired],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const ctx = useContext(AuthContext);
  if (!ctx) throw new Error("useAuth outside AuthProvider");
  return ctx;
}

/**
 * Whether the signed-in account may change things (an admin). Viewers see every write control
 * hidden; the server refuses them anyway. Outside an AuthProvider (component tests) it is true.
 */
export function useCanWrite(): boolean {
  const ctx = useContext(AuthContext);
  return ctx ? ctx.role === "admin" : true;
}
