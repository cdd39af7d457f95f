import { Activity, Clock, Cpu, KeyRound, LayoutDashboard, ListTree, LogOut, Menu, Moon, Sun, Users, UsersRound, X } from "lucide-react";
import { Suspense, useEffect, useState } from "react";
import { NavLink, Outlet, useLocation, useNavigate } from "react-router";
import { logout } from "@/lib/auth";
import { api } from "@/lib/api";
import { useServerConfig } from "@/lib/auth-context";
import { useLoad } from "@/lib/hooks";
import { MeContext } from "@/lib/me";
import { cn } from "@/lib/utils";
import { Button } from "./ui/button";
import { Spinner } from "./common";
import { PageBoundary } from "./PageBoundary";

const nav = [
  { to: "/", label: "Dashboard", icon: LayoutDashboard, end: true },
  { to: "/tasks", label: "Tasks", icon: ListTree },
  { to: "/jobs", label: "Jobs", icon: Activity },
  { to: "/triggers", label: "Triggers", icon: Clock },
  { to: "/workers", label: "Workers", icon: Cpu },
];
// With authentication: everyone's own keys; for admins, users and groups.
const userNav = [{ to: "/settings/api-keys", label: "API keys", icon: KeyRound, end: false }];
const adminNav = [
  { to: "/admin/users", label: "Users", icon: Users, end: false },
  { to: "/admin/groups", label: "Groups", icon: UsersRound, end: false },
];

function useTheme(): [boolean, () => void] {
  const [dark, setDark] = useState(() => document.documentElement.classList.contains("dark"));
  useEffect(() => {
    document.documentElement.classList.toggle("dark", dark);
  }, [dark]);
  return [
    dark,
    () =>
      setDark((d) => {
        try {
          localStorage.setItem("stroem-theme", d ? "light" : "dark");
        } catch {
          /* ignore */
        }
        return !d;
      }),
  ];
}

export function Layout() {
  const [dark, toggle] = useTheme();
  const [open, setOpen] = useState(false);
  const cfg = useServerConfig();
  const loc = useLocation();
  const navigate = useNavigate();
  useEffect(() => setOpen(false), [loc.pathname]);
  // Escape closes the open drawer (keyboard users).
  useEffect(() => {
    if (!open) return;
    const h = (e: KeyboardEvent) => e.key === "Escape" && setOpen(false);
    document.addEventListener("keydown", h);
    return () => document.removeEventListener("keydown", h);
  }, [open]);
  const me = useLoad(() => (cfg.auth_required ? api.me() : Promise.resolve(null)), [cfg.auth_required]).data ?? null;
  const items = [...nav, ...(cfg.auth_required ? userNav : []), ...(me?.is_admin ? adminNav : [])];

  return (
    <MeContext.Provider value={me}>
    <div className="flex min-h-full">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-[var(--panel)] focus:p-2">
        Skip to content
      </a>
      <aside
        className={cn(
          // Below md the navigation is a drawer: off screen and hidden
          // (out of the tab order) when closed; visibility switches at the
          // end of the slide. From md on it is a plain column.
          "fixed inset-y-0 left-0 z-30 w-56 shrink-0 border-r border-[var(--border)] bg-[var(--panel)] transition-[transform,visibility] duration-200 motion-reduce:transition-none md:visible md:static md:translate-x-0",
          open ? "visible translate-x-0" : "invisible -translate-x-full",
        )}
        aria-label="Main navigation"
      >
        <div className="flex h-14 items-center justify-between px-4">
          <NavLink to="/" className="text-lg font-bold tracking-tight text-sky-700 dark:text-sky-400">
            Strøm
          </NavLink>
          <Button variant="ghost" size="icon" className="md:hidden" onClick={() => setOpen(false)} aria-label="Close menu">
            <X className="h-4 w-4" />
          </Button>
        </div>
        <nav className="flex flex-col gap-0.5 px-2">
          {items.map(({ to, label, icon: Icon, end }) => (
            <NavLink
              key={to}
              to={to}
              end={end}
              onClick={() => setOpen(false)}
              className={({ isActive }) =>
                cn(
                  "flex items-center gap-2 rounded-md px-3 py-2 text-sm",
                  isActive ? "bg-sky-50 font-medium text-sky-800 dark:bg-sky-950 dark:text-sky-300" : "text-[var(--muted)] hover:bg-slate-100 hover:text-[var(--fg)] dark:hover:bg-slate-800",
                )
              }
            >
              <Icon className="h-4 w-4" aria-hidden /> {label}
            </NavLink>
          ))}
        </nav>
      </aside>
      {open && <div className="fixed inset-0 z-20 bg-black/40 md:hidden" onClick={() => setOpen(false)} aria-hidden />}
      <div className="flex min-w-0 flex-1 flex-col">
        <header className="sticky top-0 z-10 flex h-14 items-center gap-2 border-b border-[var(--border)] bg-[var(--panel)]/90 px-3 backdrop-blur">
          <Button variant="ghost" size="icon" className="md:hidden" onClick={() => setOpen(true)} aria-label="Open menu">
            <Menu className="h-4 w-4" />
          </Button>
          <div className="flex-1" />
          <Button variant="ghost" size="icon" onClick={toggle} aria-label={dark ? "Use light theme" : "Use dark theme"} title={dark ? "Light theme" : "Dark theme"}>
            {dark ? <Sun className="h-4 w-4" /> : <Moon className="h-4 w-4" />}
          </Button>
          {me && <span className="hidden truncate text-sm text-[var(--muted)] sm:inline" title={me.is_admin ? "admin" : undefined}>{me.email}</span>}
          {cfg.auth_required && (
            <Button
              variant="ghost"
              size="sm"
              onClick={async () => {
                await logout();
                navigate("/login");
              }}
            >
              <LogOut className="h-4 w-4" aria-hidden /> Sign out
            </Button>
          )}
        </header>
        <main id="main" className="mx-auto w-full max-w-screen-2xl flex-1 p-3 sm:p-5">
          <PageBoundary key={loc.pathname}>
            <Suspense fallback={<Spinner />}>
              <Outlet />
            </Suspense>
          </PageBoundary>
        </main>
      </div>
    </div>
    </MeContext.Provider>
  );
}
