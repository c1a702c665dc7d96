import { BarChart3, Bell, Gauge, History, KeyRound, Lock, LogOut, Users, Wallet } from "lucide-react";
import { useState } from "react";
import { NavLink, Outlet, useNavigate } from "react-router-dom";
import { useAuth, useCanWrite } from "../hooks/auth";
import { cn } from "../lib/utils";
import { ChangePasswordDialog } from "./ChangePasswordDialog";
import { Button } from "./ui/button";
import { useToast } from "./ui/toast";

const NAV = [
  { to: "/", label: "Limiters", icon: Gauge, end: true },
  { to: "/statistics", label: "Statistics", icon: BarChart3, end: false },
  { to: "/credentials", label: "Credentials", icon: KeyRound, end: false },
  { to: "/audit", label: "Audit", icon: History, end: false, adminOnly: true },
  { to: "/alerts", label: "Alerts", icon: Bell, end: false },
];

/** Pages a viewer account does not get (the server refuses it their data anyway). */
const ADMIN_NAV = [{ to: "/accounts", label: "Accounts", icon: Users, end: false, adminOnly: true }];

export function Layout() {
  const { username, role, bootstrap, logout } = useAuth();
  const canWrite = useCanWrite();
  const navigate = useNavigate();
  const toast = useToast();
  const [passwordOpen, setPasswordOpen] = useState(false);
  const nav = [...NAV, ...ADMIN_NAV].filter((n) => canWrite || !("adminOnly" in n && n.adminOnly));
  return (
    <div className="min-h-screen">
      <header className="sticky top-0 z-40 border-b bg-white/80 backdrop-blur supports-[backdrop-filter]:bg-white/70">
        <div className="mx-auto flex h-14 max-w-7xl items-center gap-2 px-4 sm:gap-4 sm:px-6">
          <NavLink to="/" className="flex items-center gap-2 font-semibold tracking-tight">
            <span className="flex h-7 w-7 items-center justify-center rounded-lg bg-zinc-900 text-white">
              <Wallet className="h-4 w-4" />
            </span>
            <span className="hidden sm:inline">Budget</span>
          </NavLink>
          <nav className="flex items-center gap-1" aria-label="Main">
            {nav.map(({ to, label, icon: Icon, end }) => (
              <NavLink
                key={to}
                to={to}
                end={end}
                data-testid={`nav-${label.toLowerCase()}`}
                aria-label={label}
                className={({ isActive }) =>
                  cn(
                    "flex items-center gap-2 rounded-md px-3 py-1.5 text-sm font-medium transition-colors",
                    isActive ? "bg-zinc-100 text-zinc-900" : "text-muted-foreground hover:bg-zinc-100/60 hover:text-zinc-900",
                  )
                }
              >
                <Icon className="h-4 w-4" />
                <span className="hidden min-[480px]:inline">{label}</span>
              </NavLink>
            ))}
          </nav>
          <div className="ml-auto flex items-center gap-3">
            {username && (
              <span className="hidden text-sm text-muted-foreground sm:inline" data-testid="current-user" data-role={role ?? ""}>
                {username}
                {role === "viewer" && <span className="ml-1 text-xs">(viewer)</span>}
              </span>
            )}
            {role && !bootstrap && (
              <Button variant="ghost" size="sm" data-testid="change-password" aria-label="Change your password" onClick={() => setPasswordOpen(true)}>
                <Lock />
                <span className="hidden md:inline">Password</span>
              </Button>
            )}
            <Button
              variant="outline"
              size="sm"
              data-testid="logout"
              aria-label="Log out"
              onClick={() => {
                logout();
                navigate("/login", { replace: true });
              }}
            >
              <LogOut />
              <span className="hidden sm:inline">Log out</span>
            </Button>
          </div>
        </div>
      </header>
      <main className="mx-auto max-w-7xl px-4 py-8 sm:px-6">
        <Outlet />
      </main>
      <ChangePasswordDialog
        open={passwordOpen}
        onOpenChange={setPasswordOpen}
        onChanged={() => toast({ title: "Password changed", description: "Your other sessions have ended.", variant: "success" })}
      />
    </div>
  );
}
