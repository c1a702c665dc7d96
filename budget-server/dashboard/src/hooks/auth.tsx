import { createContext, useCallback, useContext, useMemo, useState } from "react";
import { api, clearSession, getToken, getUsername, setSession } from "../lib/api";

interface AuthState {
  token: string | null;
  username: string | null;
  login: (username: string, password: string) => Promise<void>;
  logout: () => void;
  /** Forget the session because the server refused the token (a 401). */
  expire: () => void;
  /** True after expire(), until the next login or logout: the login page says why. */
  expired: boolean;
}

const AuthContext = createContext<AuthState | null>(null);

export function AuthProvider({ children }: { children: React.ReactNode }) {
  const [token, setToken] = useState<string | null>(() => getToken());
  const [username, setUsername] = useState<string | null>(() => getUsername());
  const [expired, setExpired] = useState(false);
  const login = useCallback(async (u: string, p: string) => {
    const res = await api.login(u, p);
    setSession(res.token, res.username ?? u);
    setToken(res.token);
    setUsername(res.username ?? u);
    setExpired(false);
  }, []);
  const logout = useCallback(() => {
    clearSession();
    setToken(null);
    setUsername(null);
    setExpired(false);
  }, []);
  const expire = useCallback(() => {
    clearSession();
    setToken(null);
    setExpired(true);
  }, []);
  const value = useMemo(() => ({ token, username, login, logout, expire, expired }), [token, username, login, logout, expire, expired]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const ctx = useContext(AuthContext);
  if (!ctx) throw new Error("useAuth outside AuthProvider");
  return ctx;
}
