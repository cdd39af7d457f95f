import { afterEach, describe, expect, it, vi } from "vitest";
import { api, ApiError } from "./api";

afterEach(() => vi.unstubAllGlobals());

describe("apiFetch", () => {
  it("says the server did not answer when the request never reached it (not the browser's bare 'Failed to fetch')", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    const e = await api.workers().catch((x) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(0);
    expect(e.message).toBe("The server did not answer (Failed to fetch): it may be down or restarting.");
  });

  it("lets an aborted request stay an abort", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new DOMException("The operation was aborted.", "AbortError"))));
    const e = await api.workers().catch((x) => x);
    expect(e.name).toBe("AbortError");
  });
});
