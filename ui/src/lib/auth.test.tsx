import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import Login from "@/pages/Login";
import { api } from "./api";
import { AuthContext } from "./auth-context";
import { getAccessToken, loadServerConfig, logout, refresh, setTokens } from "./auth";

function reply(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

afterEach(() => {
  vi.unstubAllGlobals();
  setTokens(null);
});

describe("auth against the documented routes", () => {
  it("auth is off when /api/config is missing or says so", async () => {
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(reply(404, { error: "no route" })));
    expect((await loadServerConfig()).auth_required).toBe(false);
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(reply(200, { auth_required: true, has_internal_auth: true, oidc_providers: [{ id: "google", display_name: "Google" }] })));
    expect(await loadServerConfig()).toMatchObject({ auth_required: true, oidc_providers: [{ id: "google" }] });
  });

  it("refreshes silently with the stored refresh token, and retries a 401 once", async () => {
    setTokens("old-access", "r1");
    const fetch = vi.fn(async (url: string, init?: RequestInit) => {
      if (url === "/api/auth/refresh") {
        expect(JSON.parse(String(init!.body))).toEqual({ refresh_token: "r1" });
        return reply(200, { access_token: "new-access", refresh_token: "r2" });
      }
      const auth = new Headers(init?.headers).get("Authorization");
      return auth === "Bearer new-access" ? reply(200, { items: [], total: 0 }) : reply(401, { error: "token expired" });
    });
    vi.stubGlobal("fetch", fetch);
    expect(await api.jobs({})).toEqual({ items: [], total: 0 });
    expect(getAccessToken()).toBe("new-access");
    expect(localStorage.getItem("stroem-refresh-token")).toBe("r2");
    expect(fetch).toHaveBeenCalledTimes(3); // 401, refresh, retry
  });

  it("without a stored refresh token nothing is asked (no 400 in the console on a first visit)", async () => {
    setTokens(null);
    const fetch = vi.fn();
    vi.stubGlobal("fetch", fetch);
    expect(await refresh()).toBe(false);
    expect(fetch).not.toHaveBeenCalled();
  });

  it("a refused refresh signs out; logout revokes the refresh token", async () => {
    setTokens("a", "r9");
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(reply(401, { error: "invalid refresh token" })));
    expect(await refresh()).toBe(false);
    expect(getAccessToken()).toBeNull();
    expect(localStorage.getItem("stroem-refresh-token")).toBeNull();

    setTokens("a", "r10");
    const fetch = vi.fn().mockResolvedValue(reply(200, { status: "ok" }));
    vi.stubGlobal("fetch", fetch);
    await logout();
    expect(fetch).toHaveBeenCalledWith("/api/auth/logout", expect.objectContaining({ method: "POST", body: JSON.stringify({ refresh_token: "r10" }) }));
    expect(getAccessToken()).toBeNull();
  });

  it("the login page offers the password form and each OIDC provider, and signs in", async () => {
    const fetch = vi.fn().mockResolvedValueOnce(reply(401, { error: "invalid credentials" })).mockResolvedValueOnce(reply(200, { access_token: "at", refresh_token: "rt" }));
    vi.stubGlobal("fetch", fetch);
    render(
      <AuthContext.Provider value={{ auth_required: true, has_internal_auth: true, oidc_providers: [{ id: "google", display_name: "Google" }, { id: "okta", display_name: "Okta" }] }}>
        <MemoryRouter initialEntries={["/login?next=/jobs"]}>
          <Routes>
            <Route path="/login" element={<Login />} />
            <Route path="/jobs" element={<p>jobs page</p>} />
          </Routes>
        </MemoryRouter>
      </AuthContext.Provider>,
    );
    expect(screen.getByRole("link", { name: "Continue with Google" })).toHaveAttribute("href", "/api/auth/oidc/google");
    expect(screen.getByRole("link", { name: "Continue with Okta" })).toHaveAttribute("href", "/api/auth/oidc/okta");
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Email"), "admin@stroem.local");
    await user.type(screen.getByLabelText("Password"), "wrong");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Wrong email or password.");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByText("jobs page")).toBeInTheDocument();
    expect(getAccessToken()).toBe("at");
    expect(JSON.parse(fetch.mock.calls[1][1].body)).toEqual({ email: "admin@stroem.local", password: "wrong" });
  });

  it("signing in while the server does not answer says so (not the browser's bare \"Failed to fetch\")", async () => {
    vi.stubGlobal("fetch", vi.fn().mockRejectedValue(new TypeError("Failed to fetch")));
    render(
      <AuthContext.Provider value={{ auth_required: true, has_internal_auth: true, oidc_providers: [] }}>
        <MemoryRouter initialEntries={["/login"]}>
          <Routes>
            <Route path="/login" element={<Login />} />
          </Routes>
        </MemoryRouter>
      </AuthContext.Provider>,
    );
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Email"), "admin@stroem.local");
    await user.type(screen.getByLabelText("Password"), "pw");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("The server did not answer (Failed to fetch): it may be down or restarting.");
    expect(screen.getByRole("button", { name: "Sign in" })).toBeEnabled();
  });
});
