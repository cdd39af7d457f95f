import { vi } from "vitest";

export interface Call {
  method: string;
  path: string;
  body: unknown;
}

/** Replaces fetch with a router of canned JSON answers, keyed by
 * "METHOD /path" (query included); records every call. An unknown route
 * answers like the server: a JSON 404 "no route for …". */
export function mockApi(routes: Record<string, (body: unknown) => unknown | [number, unknown]>): Call[] {
  const calls: Call[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: string, init: RequestInit = {}) => {
      const method = (init.method ?? "GET").toUpperCase();
      const body = typeof init.body === "string" ? JSON.parse(init.body) : undefined;
      calls.push({ method, path: input, body });
      const h = routes[`${method} ${input}`];
      let status = 200;
      let out: unknown = { error: `no route for ${method} ${input}` };
      if (!h) status = 404;
      else {
        const r = h(body);
        if (Array.isArray(r) && r.length === 2 && typeof r[0] === "number") [status, out] = r as [number, unknown];
        else out = r;
      }
      return new Response(JSON.stringify(out), { status, headers: { "Content-Type": "application/json" } });
    }),
  );
  return calls;
}
