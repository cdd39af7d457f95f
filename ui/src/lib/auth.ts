// Tokens of the documented auth API (docs: auth-api). The access token
// lives in memory only; the refresh token in localStorage so a reload or a
// new tab stays signed in. Both are refreshed silently shortly before the
// access token expires, and once more when a request is answered 401.
import type { ServerConfig } from "./types";
import { noAnswer } from "./utils";

const REFRESH_KEY = "stroem-refresh-token";

let accessToken: string | null = null;
let refreshing: Promise<boolean> | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;
const listeners = new Set<() => void>();

export function onAuthChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
function changed() {
  listeners.forEach((fn) => fn());
}

export function getAccessToken(): string | null {
  return accessToken;
}

function storedRefresh(): string | null {
  try {
    return localStorage.getItem(REFRESH_KEY);
  } catch {
    return null;
  }
}

/** The expiry (ms since epoch) in a JWT's payload, or null. */
export function jwtExpiry(token: string): number | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const json = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
    return typeof json.exp === "number" ? json.exp * 1000 : null;
  } catch {
    return null;
  }
}

export function setTokens(access: string | null, refreshToken?: string | null) {
  accessToken = access;
  try {
    if (refreshToken) localStorage.setItem(REFRESH_KEY, refreshToken);
    if (access === null) localStorage.removeItem(REFRESH_KEY);
  } catch {
    /* storage unavailable: stay signed in for this page only */
  }
  clearTimeout(timer);
  const exp = access ? jwtExpiry(access) : null;
  if (exp) {
    // Refresh a minute early (or halfway for very short tokens).
    const wait = Math.max(5_000, Math.min(exp - Date.now() - 60_000, (exp - Date.now()) / 2));
    timer = setTimeout(() => void refresh(), wait);
  }
  changed();
}

/** Exchanges the stored refresh token for a new pair; false when there is
 * none or the server refuses it (then the user must sign in again). */
export function refresh(): Promise<boolean> {
  if (refreshing) return refreshing;
  const rt = storedRefresh();
  // Nothing to exchange: a first visit, or signed out. Not asking keeps
  // the browser console free of the server's 400 for a missing token.
  if (!rt) return Promise.resolve(false);
  refreshing = (async () => {
    try {
      const res = await fetch("/api/auth/refresh", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: rt }),
      });
      if (!res.ok) {
        if (res.status === 401 || res.status === 400) setTokens(null);
        return false;
      }
      const body = await res.json();
      setTokens(body.access_token ?? null, body.refresh_token ?? null);
      return !!body.access_token;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export async function login(email: string, password: string): Promise<void> {
  const res = await fetch("/api/auth/login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  }).catch((e) => {
    throw new Error(noAnswer(e));
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    throw new Error(res.status === 401 ? "Wrong email or password." : body.error || `Sign-in failed (${res.status}).`);
  }
  setTokens(body.access_token, body.refresh_token);
}

export async function logout(): Promise<void> {
  const rt = storedRefresh();
  const at = accessToken;
  setTokens(null);
  await fetch("/api/auth/logout", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", ...(at ? { Authorization: `Bearer ${at}` } : {}) },
    body: JSON.stringify(rt ? { refresh_token: rt } : {}),
  }).catch(() => undefined);
}

/** GET /api/config. A server without the route (404) or without an auth
 * section has auth off: the UI then never shows a login page. */
export async function loadServerConfig(): Promise<ServerConfig> {
  const off: ServerConfig = { auth_required: false, has_internal_auth: false, oidc_providers: [] };
  try {
    const res = await fetch("/api/config", { headers: { Accept: "application/json" } });
    if (!res.ok) return off;
    const body = await res.json();
    return {
      auth_required: !!body.auth_required,
      has_internal_auth: !!body.has_internal_auth,
      oidc_providers: Array.isArray(body.oidc_providers) ? body.oidc_providers : [],
      version: body.version,
    };
  } catch {
    return off;
  }
}

/** Reads the tokens an OIDC callback put in the URL fragment
 * (#access_token=…&refresh_token=… or #error=…). */
export function readOidcFragment(hash: string): { error?: string; ok: boolean } {
  const p = new URLSearchParams(hash.replace(/^#/, ""));
  const err = p.get("error");
  if (err) return { ok: false, error: err };
  const at = p.get("access_token");
  if (!at) return { ok: false, error: "The sign-in answer carried no token." };
  setTokens(at, p.get("refresh_token"));
  return { ok: true };
}
