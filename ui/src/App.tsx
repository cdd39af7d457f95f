import { lazy, Suspense, useEffect, useState, useSyncExternalStore } from "react";
import { BrowserRouter, Navigate, Route, Routes, useLocation } from "react-router";
import { Layout } from "./components/Layout";
import { Spinner } from "./components/common";
import { getAccessToken, loadServerConfig, onAuthChange, refresh, setTokens } from "./lib/auth";
import { unauthorized } from "./lib/api";
import type { ServerConfig } from "./lib/types";
import { AuthContext } from "./lib/auth-context";

// Each page is its own chunk. The page of the address the app opens on is
// fetched at once, in parallel with GET /api/config (not after it), which
// takes a round trip off the first paint of any page.
const pages = {
  dashboard: () => import("./pages/Dashboard"),
  tasks: () => import("./pages/Tasks"),
  task: () => import("./pages/TaskPage"),
  jobs: () => import("./pages/Jobs"),
  job: () => import("./pages/JobPage"),
  workers: () => import("./pages/Workers"),
  triggers: () => import("./pages/Triggers"),
  login: () => import("./pages/Login"),
  loginCallback: () => import("./pages/LoginCallback"),
  notFound: () => import("./pages/NotFound"),
  apiKeys: () => import("./pages/ApiKeys"),
  users: () => import("./pages/Users"),
  user: () => import("./pages/UserPage"),
  groups: () => import("./pages/Groups"),
};
const Dashboard = lazy(pages.dashboard);
const Tasks = lazy(pages.tasks);
const TaskPage = lazy(pages.task);
const Jobs = lazy(pages.jobs);
const JobPage = lazy(pages.job);
const Workers = lazy(pages.workers);
const Triggers = lazy(pages.triggers);
const Login = lazy(pages.login);
const LoginCallback = lazy(pages.loginCallback);
const NotFound = lazy(pages.notFound);
const ApiKeys = lazy(pages.apiKeys);
const Users = lazy(pages.users);
const UserPage = lazy(pages.user);
const Groups = lazy(pages.groups);

/** The page chunk for a path (the routes below), to fetch it early. */
export function pageFor(path: string): (() => Promise<unknown>) | undefined {
  const routes: [RegExp, () => Promise<unknown>][] = [
    [/^\/$/, pages.dashboard],
    [/^\/tasks\/?$/, pages.tasks],
    [/^\/tasks\/[^/]+\/[^/]+\/?$/, pages.task],
    [/^\/jobs\/?$/, pages.jobs],
    [/^\/jobs\/[^/]+\/?$/, pages.job],
    [/^\/workers\/?$/, pages.workers],
    [/^\/triggers\/?$/, pages.triggers],
    [/^\/login\/?$/, pages.login],
    [/^\/settings\/api-keys\/?$/, pages.apiKeys],
    [/^\/admin\/users\/?$/, pages.users],
    [/^\/admin\/users\/[^/]+\/?$/, pages.user],
    [/^\/admin\/groups\/?$/, pages.groups],
  ];
  return routes.find(([re]) => re.test(path))?.[1];
}

let configPromise: Promise<ServerConfig> | undefined;
/** Starts the app's first requests: the server config and the page's code. */
export function startLoading() {
  configPromise ??= loadServerConfig();
  void pageFor(location.pathname)?.().catch(() => undefined);
}

function useSignedIn(): boolean {
  return useSyncExternalStore(onAuthChange, () => getAccessToken() !== null);
}

function Gate({ config }: { config: ServerConfig }) {
  const signedIn = useSignedIn();
  const loc = useLocation();
  useEffect(() => {
    const h = () => setTokens(null);
    unauthorized.addEventListener("unauthorized", h);
    return () => unauthorized.removeEventListener("unauthorized", h);
  }, []);
  const needLogin = config.auth_required && !signedIn;
  if (needLogin && loc.pathname !== "/login" && loc.pathname !== "/login/callback") {
    return <Navigate to={`/login?next=${encodeURIComponent(loc.pathname + loc.search)}`} replace />;
  }
  return (
    <Suspense fallback={<Spinner />}>
      <Routes>
        <Route path="/login" element={<Login />} />
        <Route path="/login/callback" element={<LoginCallback />} />
        <Route element={<Layout />}>
          <Route index element={<Dashboard />} />
          <Route path="tasks" element={<Tasks />} />
          <Route path="tasks/:ws/:task" element={<TaskPage />} />
          <Route path="jobs" element={<Jobs />} />
          <Route path="jobs/:id" element={<JobPage />} />
          <Route path="workers" element={<Workers />} />
          <Route path="triggers" element={<Triggers />} />
          <Route path="settings/api-keys" element={<ApiKeys />} />
          <Route path="admin/users" element={<Users />} />
          <Route path="admin/users/:id" element={<UserPage />} />
          <Route path="admin/groups" element={<Groups />} />
          <Route path="*" element={<NotFound />} />
        </Route>
      </Routes>
    </Suspense>
  );
}

export function App() {
  const [config, setConfig] = useState<ServerConfig>();
  useEffect(() => {
    void (async () => {
      startLoading();
      const c = await configPromise!;
      // Restore a session silently from the stored refresh token.
      if (c.auth_required && location.pathname !== "/login/callback") await refresh();
      setConfig(c);
    })();
  }, []);
  if (!config) return <Spinner />;
  return (
    <AuthContext.Provider value={config}>
      <BrowserRouter>
        <Gate config={config} />
      </BrowserRouter>
    </AuthContext.Provider>
  );
}
