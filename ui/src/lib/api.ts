import { getAccessToken, refresh } from "./auth";
import { noAnswer } from "./utils";
import type { ApiKey, ApiKeyCreated, Job, Page, Task, TaskDetail, TaskStats, Trigger, User, UserPage, Worker, Workspace, Me } from "./types";

export class ApiError extends Error {
  status: number;
  details: string[];
  constructor(status: number, message: string, details: string[] = []) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.details = details;
  }
}

/** Listeners told when the server says the session is gone (401 after a
 * failed refresh): the app shows the login page. */
export const unauthorized = new EventTarget();

export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const send = () => {
    const headers = new Headers(init.headers);
    const tok = getAccessToken();
    if (tok) headers.set("Authorization", `Bearer ${tok}`);
    if (init.body && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
    if (!headers.has("Accept")) headers.set("Accept", "application/json");
    // A request that never reached the server rejects with the browser's
    // bare "Failed to fetch" (or "Load failed", "NetworkError…"): say what
    // it means. An abort stays an abort.
    return fetch(path, { ...init, headers, credentials: "same-origin" }).catch((e: Error) => {
      if (e?.name === "AbortError") throw e;
      throw new ApiError(0, noAnswer(e));
    });
  };
  let res = await send();
  if (res.status === 401 && !path.startsWith("/api/auth/")) {
    if (await refresh()) res = await send();
    if (res.status === 401) unauthorized.dispatchEvent(new Event("unauthorized"));
  }
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    let details: string[] = [];
    try {
      const body = await res.json();
      if (body?.error) msg = typeof body.error === "string" ? body.error : JSON.stringify(body.error);
      if (Array.isArray(body?.details)) details = body.details;
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, msg, details);
  }
  return res;
}

export async function getJSON<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await apiFetch(path, init);
  return (await res.json()) as T;
}

const seg = encodeURIComponent;

export interface JobQuery {
  workspace?: string;
  task?: string;
  status?: string;
  since?: string;
  until?: string;
  limit?: number;
  offset?: number;
}

export function jobsQueryString(q: JobQuery): string {
  const p = new URLSearchParams();
  if (q.workspace) p.set("workspace", q.workspace);
  if (q.task) p.set("task", q.task);
  if (q.status) p.set("status", q.status);
  if (q.since) p.set("since", q.since);
  if (q.until) p.set("until", q.until);
  if (q.limit) p.set("limit", String(q.limit));
  if (q.offset) p.set("offset", String(q.offset));
  const s = p.toString();
  return s ? "?" + s : "";
}

export const api = {
  workspaces: () => getJSON<Workspace[]>("/api/workspaces"),
  tasks: (ws: string) => getJSON<Task[]>(`/api/workspaces/${seg(ws)}/tasks`),
  task: (ws: string, t: string) => getJSON<TaskDetail>(`/api/workspaces/${seg(ws)}/tasks/${seg(t)}`),
  taskStats: (ws: string, t: string, limit = 50) =>
    getJSON<TaskStats>(`/api/workspaces/${seg(ws)}/tasks/${seg(t)}/stats?limit=${limit}`),
  triggers: (ws: string) => getJSON<Trigger[]>(`/api/workspaces/${seg(ws)}/triggers`),
  execute: (ws: string, t: string, input: Record<string, unknown>) =>
    getJSON<{ job_id: string }>(`/api/workspaces/${seg(ws)}/tasks/${seg(t)}/execute`, {
      method: "POST",
      body: JSON.stringify({ input }),
    }),
  jobs: (q: JobQuery) => getJSON<Page<Job>>("/api/jobs" + jobsQueryString(q)),
  job: (id: string) => getJSON<Job>(`/api/jobs/${seg(id)}`),
  cancel: (id: string) => getJSON<Job>(`/api/jobs/${seg(id)}/cancel`, { method: "POST" }),
  logsText: async (id: string, step?: string) => {
    const path = step ? `/api/jobs/${seg(id)}/steps/${seg(step)}/logs` : `/api/jobs/${seg(id)}/logs`;
    return (await getJSON<{ logs: string }>(path)).logs;
  },
  workers: () => getJSON<Page<Worker>>("/api/workers"),
  me: () => getJSON<Me>("/api/auth/me"),
  // Approval gates: one route decides, as the workflow language's reference names it.
  approve: (id: string, step: string, approved: boolean, reason?: string, message?: string) =>
    getJSON<unknown>(`/api/jobs/${seg(id)}/steps/${seg(step)}/approve`, {
      method: "POST",
      body: JSON.stringify({ approved, ...(!approved && reason ? { rejection_reason: reason } : {}), ...(message ? { message } : {}) }),
    }),
  // The signed-in user's API keys.
  myKeys: () => getJSON<ApiKey[]>("/api/auth/api-keys"),
  createKey: (name: string, expiresInDays?: number) =>
    getJSON<ApiKeyCreated>("/api/auth/api-keys", {
      method: "POST",
      body: JSON.stringify(expiresInDays ? { name, expires_in_days: expiresInDays } : { name }),
    }),
  revokeKey: (prefix: string) => getJSON<unknown>(`/api/auth/api-keys/${seg(prefix)}`, { method: "DELETE" }),
  // Administration (admins only).
  users: (limit = 20, offset = 0) => getJSON<UserPage>(`/api/users?limit=${limit}&offset=${offset}`),
  user: (id: string) => getJSON<User>(`/api/users/${seg(id)}`),
  setAdmin: (id: string, isAdmin: boolean) =>
    getJSON<User>(`/api/users/${seg(id)}/admin`, { method: "PUT", body: JSON.stringify({ is_admin: isAdmin }) }),
  setGroups: (id: string, groups: string[]) =>
    getJSON<{ groups: string[] }>(`/api/users/${seg(id)}/groups`, { method: "PUT", body: JSON.stringify({ groups }) }),
  groups: async () => (await getJSON<{ groups: string[] }>("/api/groups")).groups ?? [],
  userKeys: (id: string) => getJSON<ApiKey[]>(`/api/users/${seg(id)}/api-keys`),
  revokeUserKey: (id: string, prefix: string) => getJSON<unknown>(`/api/users/${seg(id)}/api-keys/${seg(prefix)}`, { method: "DELETE" }),
};

/** Every user, page by page (the groups page shows each group's members). */
export async function allUsers(): Promise<User[]> {
  const out: User[] = [];
  for (let offset = 0; ; ) {
    const p = await api.users(1000, offset);
    out.push(...p.items);
    offset += p.items.length;
    if (p.items.length === 0 || offset >= p.total) return out;
  }
}
