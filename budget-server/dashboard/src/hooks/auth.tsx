import { createContext, useCallback, useContext, useMemo, useState } from "react";
import { api, clearSession, getUsername, hasSession, setSession } from "../lib/api";

interface AuthState {
  /** True while the browser holds a session cookie (the token itself is HttpOnly). */
  signedIn: boolean;
  username: string | null;
  login: (username: string, password: string) => Promise<void>;
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
  const login = useCallback(async (u: string, p: string) => {
    const res = await api.login(u, p);
    setSession(res.username ?? u);
    setSignedIn(true);
    setUsername(res.username ?? u);
    setExpired(false);
  }, []);
  const logout = useCallback(() => {
    // The server clears the HttpOnly cookie; forget this side at once either way.
    api.logout().catch(() => {});
    clearSession();
    setSignedIn(false);
    setUsername(null);
    setExpired(false);
  }, []);
  const expire = useCallback(() => {
    clearSession();
    setSignedIn(false);
    setExpired(true);
  }, []);
  const value = useMemo(() => ({ signedIn, username, login, logout, expire, expired }), [signedIn, username, login, logout, expire, expired]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const ctx = useContext(AuthContext);
  if (!ctx) throw new Error("useAuth outside AuthProvider");
  return ctx;
}
