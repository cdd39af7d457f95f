import { lazy, Suspense, useEffect, useState, useSyncExternalStore } from "react";
import { BrowserRouter, Navigate, Route, Routes, useLocation } from "react-router";
import { Layout } from "./components/Layout";
import { Spinner } from "./components/common";
import { getAccessToken, loadServerConfig, onAuthChange, refresh, setTokens } from "./lib/auth";
import { unauthorized } from "./lib/api";
import type { ServerConfig } from "./lib/types";
import { AuthContext } from "./lib/auth-context";

const Dashboard = lazy(() => import("./pages/Dashboard"));
const Tasks = lazy(() => import("./pages/Tasks"));
const TaskPage = lazy(() => import("./pages/TaskPage"));
const Jobs = lazy(() => import("./pages/Jobs"));
const JobPage = lazy(() => import("./pages/JobPage"));
const Workers = lazy(() => import("./pages/Workers"));
const Triggers = lazy(() => import("./pages/Triggers"));
const Login = lazy(() => import("./pages/Login"));
const LoginCallback = lazy(() => import("./pages/LoginCallback"));
const NotFound = lazy(() => import("./pages/NotFound"));
const ApiKeys = lazy(() => import("./pages/ApiKeys"));
const Users = lazy(() => import("./pages/Users"));
const UserPage = lazy(() => import("./pages/UserPage"));
const Groups = lazy(() => import("./pages/Groups"));

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
      const c = await loadServerConfig();
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
