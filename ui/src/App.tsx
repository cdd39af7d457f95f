import { Suspense, useEffect, useState, useSyncExternalStore } from "react";
import { BrowserRouter, Navigate, Route, Routes, useLocation } from "react-router";
import { Layout } from "./components/Layout";
import { Spinner } from "./components/common";
import { PageBoundary } from "./components/PageBoundary";
import { getAccessToken, loadServerConfig, onAuthChange, refresh, setTokens } from "./lib/auth";
import { unauthorized } from "./lib/api";
import type { ServerConfig } from "./lib/types";
import { AuthContext } from "./lib/auth-context";
import { page } from "./lib/page";

// Each page is its own chunk. The page of the address the app opens on is
// fetched at once, in parallel with GET /api/config (not after it), and the
// first render waits for both, so it shows the page without a spinner.
const Dashboard = page(() => import("./pages/Dashboard"));
const Tasks = page(() => import("./pages/Tasks"));
const TaskPage = page(() => import("./pages/TaskPage"));
const Jobs = page(() => import("./pages/Jobs"));
const JobPage = page(() => import("./pages/JobPage"));
const Workers = page(() => import("./pages/Workers"));
const Triggers = page(() => import("./pages/Triggers"));
const Login = page(() => import("./pages/Login"));
const LoginCallback = page(() => import("./pages/LoginCallback"));
const NotFound = page(() => import("./pages/NotFound"));
const ApiKeys = page(() => import("./pages/ApiKeys"));
const Users = page(() => import("./pages/Users"));
const UserPage = page(() => import("./pages/UserPage"));
const Groups = page(() => import("./pages/Groups"));

/** The page for a path (the routes below), to fetch its code early. */
export function pageFor(path: string): { preload: () => Promise<unknown> } | undefined {
  const routes: [RegExp, { preload: () => Promise<unknown> }][] = [
    [/^\/$/, Dashboard],
    [/^\/tasks\/?$/, Tasks],
    [/^\/tasks\/[^/]+\/[^/]+\/?$/, TaskPage],
    [/^\/jobs\/?$/, Jobs],
    [/^\/jobs\/[^/]+\/?$/, JobPage],
    [/^\/workers\/?$/, Workers],
    [/^\/triggers\/?$/, Triggers],
    [/^\/login\/?$/, Login],
    [/^\/login\/callback\/?$/, LoginCallback],
    [/^\/settings\/api-keys\/?$/, ApiKeys],
    [/^\/admin\/users\/?$/, Users],
    [/^\/admin\/users\/[^/]+\/?$/, UserPage],
    [/^\/admin\/groups\/?$/, Groups],
  ];
  return routes.find(([re]) => re.test(path))?.[1];
}

let configPromise: Promise<ServerConfig> | undefined;
let pagePromise: Promise<unknown> | undefined;
/** Starts the app's first requests: the server config and the page's code. */
export function startLoading() {
  configPromise ??= loadServerConfig();
  pagePromise ??= pageFor(location.pathname)?.preload().catch(() => undefined);
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
    <PageBoundary>
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
    </PageBoundary>
  );
}

export function App() {
  const [config, setConfig] = useState<ServerConfig>();
  useEffect(() => {
    void (async () => {
      startLoading();
      const [c] = await Promise.all([configPromise!, pagePromise]);
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
