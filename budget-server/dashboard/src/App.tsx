import { useEffect } from "react";
import { Navigate, Route, Routes, useLocation } from "react-router-dom";
import { Layout } from "./components/Layout";
import { useAuth } from "./hooks/auth";
import { setUnauthorizedHandler } from "./lib/api";
import { AccountsPage } from "./pages/AccountsPage";
import { AlertsPage } from "./pages/AlertsPage";
import { AuditPage } from "./pages/AuditPage";
import { CredentialsPage } from "./pages/CredentialsPage";
import { LimitersPage } from "./pages/LimitersPage";
import { LoginPage } from "./pages/LoginPage";
import { StatisticsPage } from "./pages/StatisticsPage";

function RequireAuth({ children }: { children: React.ReactNode }) {
  const { signedIn } = useAuth();
  const location = useLocation();
  if (!signedIn) return <Navigate to="/login" replace state={{ from: location.pathname }} />;
  return <>{children}</>;
}

export function App() {
  const { expire } = useAuth();

  // A 401 on any call means the session expired or was revoked: forget it, and RequireAuth
  // sends the user to /login (and back to where they were after signing in again).
  useEffect(() => {
    setUnauthorizedHandler(expire);
    return () => setUnauthorizedHandler(() => {});
  }, [expire]);

  return (
    <Routes>
      <Route path="/login" element={<LoginPage />} />
      <Route
        element={
          <RequireAuth>
            <Layout />
          </RequireAuth>
        }
      >
        <Route path="/" element={<LimitersPage />} />
        <Route path="/statistics" element={<StatisticsPage />} />
        <Route path="/credentials" element={<CredentialsPage />} />
        <Route path="/audit" element={<AuditPage />} />
        <Route path="/accounts" element={<AccountsPage />} />
        <Route path="/alerts" element={<AlertsPage />} />
      </Route>
      <Route path="*" element={<Navigate to="/" replace />} />
    </Routes>
  );
}
