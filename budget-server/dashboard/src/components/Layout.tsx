import { BarChart3, Bell, Gauge, History, KeyRound, LogOut, Wallet } from "lucide-react";
import { NavLink, Outlet, useNavigate } from "react-router-dom";
import { useAuth } from "../hooks/auth";
import { cn } from "../lib/utils";
import { Button } from "./ui/button";

const NAV = [
  { to: "/", label: "Limiters", icon: Gauge, end: true },
  { to: "/statistics", label: "Statistics", icon: BarChart3, end: false },
  { to: "/credentials", label: "Credentials", icon: KeyRound, end: false },
  { to: "/audit", label: "Audit", icon: History, end: false },
  { to: "/alerts", label: "Alerts", icon: Bell, end: false },
];

export function Layout() {
  const { username, logout } = useAuth();
  const navigate = useNavigate();
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
            {NAV.map(({ to, label, icon: Icon, end }) => (
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
            {username && <span className="hidden text-sm text-muted-foreground sm:inline" data-testid="current-user">{username}</span>}
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
    </div>
  );
}
