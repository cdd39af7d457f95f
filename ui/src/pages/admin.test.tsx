import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AuthContext } from "@/lib/auth-context";
import { MeContext } from "@/lib/me";
import type { ApiKey, Me, User } from "@/lib/types";
import { mockApi } from "@/test/fetchmock";
import ApiKeys from "./ApiKeys";
import Groups, { membersByGroup } from "./Groups";
import UserPage from "./UserPage";
import Users from "./Users";

const ADMIN: Me = { user_id: "aaaaaaaa-0000-0000-0000-000000000001", email: "admin@example.com", is_admin: true, groups: [] };
const DEV: User = { user_id: "bbbbbbbb-0000-0000-0000-000000000002", email: "dev@example.com", is_admin: false, groups: ["devops"], auth_methods: ["password"], created_at: "2026-12-01T00:00:00Z", last_login_at: null };
const key = (prefix: string, name: string, extra: Partial<ApiKey> = {}): ApiKey => ({ prefix, name, created_at: "2026-12-01T00:00:00Z", expires_at: null, last_used_at: null, ...extra });

function renderAt(path: string, route: string, el: ReactNode, { auth = true, me = ADMIN }: { auth?: boolean; me?: Me | null } = {}) {
  return render(
    <AuthContext.Provider value={{ auth_required: auth, has_internal_auth: true, oidc_providers: [] }}>
      <MeContext.Provider value={me}>
        <MemoryRouter initialEntries={[path]}>
          <Routes>
            <Route path={route} element={el} />
          </Routes>
        </MemoryRouter>
      </MeContext.Provider>
    </AuthContext.Provider>,
  );
}

afterEach(() => vi.unstubAllGlobals());

describe("my API keys", () => {
  it("lists keys, creates one (shown once), and revokes one after confirmation", async () => {
    let keys = [key("strm_a1b", "laptop", { last_used_at: new Date().toISOString() }), key("strm_old", "old", { expires_at: "2020-01-01T00:00:00Z" })];
    const calls = mockApi({
      "GET /api/auth/api-keys": () => keys,
      "POST /api/auth/api-keys": (b) => {
        const k = { ...key("strm_new", (b as { name: string }).name), key: "strm_new0123456789abcdef0123456789ab" };
        keys = [k, ...keys];
        return [201, k];
      },
      "DELETE /api/auth/api-keys/strm_a1b": () => {
        keys = keys.filter((k) => k.prefix !== "strm_a1b");
        return { status: "ok" };
      },
    });
    const user = userEvent.setup();
    renderAt("/settings/api-keys", "/settings/api-keys", <ApiKeys />);
    expect(await screen.findByText("laptop")).toBeInTheDocument();
    expect(screen.getByText(/\(expired\)/)).toBeInTheDocument();

    // Validation before the server: a name, a whole number of days.
    await user.click(screen.getByRole("button", { name: "Create key" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Give the key a name");
    await user.type(screen.getByLabelText("Name"), "ci");
    await user.type(screen.getByLabelText("Expires in (days)"), "0");
    await user.click(screen.getByRole("button", { name: "Create key" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("whole number of days");
    await user.clear(screen.getByLabelText("Expires in (days)"));
    await user.type(screen.getByLabelText("Expires in (days)"), "90");
    await user.click(screen.getByRole("button", { name: "Create key" }));
    expect(await screen.findByTestId("new-key")).toHaveTextContent("strm_new0123456789abcdef0123456789ab");
    expect(calls.find((c) => c.method === "POST")?.body).toEqual({ name: "ci", expires_in_days: 90 });
    await user.click(screen.getByRole("button", { name: "Done" }));
    expect(screen.queryByTestId("new-key")).toBeNull();

    await user.click(screen.getByRole("button", { name: "Revoke laptop (strm_a1b)" }));
    const dlg = await screen.findByRole("dialog");
    await user.click(within(dlg).getByRole("button", { name: "Revoke key" }));
    await waitFor(() => expect(screen.queryByText("laptop")).toBeNull());
    expect(calls.some((c) => c.method === "DELETE" && c.path === "/api/auth/api-keys/strm_a1b")).toBe(true);
  });

  it("says so when the key cannot be copied (no clipboard on a plain-http page), and selects it to copy by hand", async () => {
    mockApi({
      "GET /api/auth/api-keys": () => [],
      "POST /api/auth/api-keys": () => [201, { ...key("strm_new", "ci"), key: "strm_new0123456789abcdef0123456789ab" }],
    });
    const user = userEvent.setup(); // (it puts a clipboard of its own in place)
    // Browsers have no navigator.clipboard outside a secure context (https or localhost).
    const had = Object.getOwnPropertyDescriptor(navigator, "clipboard");
    Object.defineProperty(navigator, "clipboard", { value: undefined, configurable: true });
    try {
      renderAt("/settings/api-keys", "/settings/api-keys", <ApiKeys />);
      await user.type(await screen.findByLabelText("Name"), "ci");
      await user.click(screen.getByRole("button", { name: "Create key" }));
      await user.click(await screen.findByRole("button", { name: "Copy" }));
      expect(await screen.findByText(/Could not copy/)).toBeInTheDocument();
      expect(window.getSelection()?.toString()).toBe("strm_new0123456789abcdef0123456789ab");
      expect(screen.queryByRole("button", { name: "Copied" })).toBeNull();
    } finally {
      if (had) Object.defineProperty(navigator, "clipboard", had);
      else delete (navigator as { clipboard?: unknown }).clipboard;
    }
  });

  it("says there are no keys on a server without authentication, without calling the API", async () => {
    const calls = mockApi({});
    renderAt("/settings/api-keys", "/settings/api-keys", <ApiKeys />, { auth: false, me: null });
    expect(await screen.findByText(/no authentication/)).toBeInTheDocument();
    expect(calls).toEqual([]);
  });
});

describe("administration", () => {
  it("lists users with their role and groups, page by page", async () => {
    const many = Array.from({ length: 45 }, (_, i) => ({ ...DEV, user_id: `u${i}`, email: `u${i}@example.com` }));
    const calls = mockApi({
      "GET /api/users?limit=20&offset=0": () => ({ items: [ADMIN, DEV], total: 45, limit: 20, offset: 0 }),
      "GET /api/users?limit=20&offset=20": () => ({ items: many.slice(20, 40), total: 45, limit: 20, offset: 20 }),
    });
    const user = userEvent.setup();
    renderAt("/admin/users", "/admin/users", <Users />);
    const row = (await screen.findByText("dev@example.com")).closest("tr")!;
    expect(within(row).getByText("devops")).toBeInTheDocument();
    expect(within(row).getByText("user")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "admin@example.com" }).closest("tr")).toHaveTextContent("admin");
    expect(screen.getByRole("link", { name: "dev@example.com" })).toHaveAttribute("href", `/admin/users/${DEV.user_id}`);
    expect(screen.getByText("page 1 of 3")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Next page" }));
    expect(await screen.findByText("u20@example.com")).toBeInTheDocument();
    expect(calls.map((c) => c.path)).toContain("/api/users?limit=20&offset=20");
  });

  it("asks nothing of a server without authentication (no users: the routes do not exist)", async () => {
    const calls = mockApi({});
    for (const [path, route, el] of [
      ["/admin/users", "/admin/users", <Users />],
      ["/admin/groups", "/admin/groups", <Groups />],
      [`/admin/users/${DEV.user_id}`, "/admin/users/:id", <UserPage />],
    ] as const) {
      const r = renderAt(path, route, el, { auth: false, me: null });
      expect(await screen.findByText(/This server has no authentication/)).toBeInTheDocument();
      r.unmount();
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toEqual([]);
  });

  it("tells a non-admin the pages are for admins", async () => {
    const calls = mockApi({});
    renderAt("/admin/users", "/admin/users", <Users />, { me: { ...DEV } });
    expect(await screen.findByText(/Only admins manage users/)).toBeInTheDocument();
    // The page may load before the answer of /api/auth/me; it shows the server's 403 then.
    expect(calls.every((c) => c.path.startsWith("/api/users"))).toBe(true);
  });

  it("a user's page: admin flag, groups (validated, saved whole) and their API keys", async () => {
    let u = { ...DEV };
    let keys = [key("strm_dev", "dev-laptop")];
    const calls = mockApi({
      [`GET /api/users/${DEV.user_id}`]: () => u,
      "GET /api/groups": () => ({ groups: ["devops", "qa"] }),
      [`GET /api/users/${DEV.user_id}/api-keys`]: () => keys,
      [`PUT /api/users/${DEV.user_id}/admin`]: (b) => (u = { ...u, is_admin: (b as { is_admin: boolean }).is_admin }),
      [`PUT /api/users/${DEV.user_id}/groups`]: (b) => {
        u = { ...u, groups: (b as { groups: string[] }).groups };
        return { groups: u.groups };
      },
      [`DELETE /api/users/${DEV.user_id}/api-keys/strm_dev`]: () => {
        keys = [];
        return { status: "ok" };
      },
    });
    const user = userEvent.setup();
    renderAt(`/admin/users/${DEV.user_id}`, "/admin/users/:id", <UserPage />);
    await screen.findByRole("heading", { name: "dev@example.com" });

    const sw = screen.getByRole("switch", { name: "Admin" });
    expect(sw).toHaveAttribute("aria-checked", "false");
    await user.click(sw);
    await waitFor(() => expect(screen.getByRole("switch", { name: "Admin" })).toHaveAttribute("aria-checked", "true"));
    expect(calls.find((c) => c.path.endsWith("/admin"))?.body).toEqual({ is_admin: true });

    const groups = screen.getByRole("list", { name: "Groups" });
    expect(within(groups).getByText("devops")).toBeInTheDocument();
    await user.type(screen.getByLabelText("Add a group"), "bad name!");
    await user.click(screen.getByRole("button", { name: "Add" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("not a group name");
    await user.clear(screen.getByLabelText("Add a group"));
    await user.type(screen.getByLabelText("Add a group"), "qa{Enter}");
    await user.click(screen.getByRole("button", { name: "Remove group devops" }));
    await user.click(screen.getByRole("button", { name: "Save groups" }));
    expect(await screen.findByText("Saved.")).toBeInTheDocument();
    expect(calls.find((c) => c.path.endsWith("/groups") && c.method === "PUT")?.body).toEqual({ groups: ["qa"] });

    await user.click(screen.getByRole("button", { name: "Revoke dev-laptop (strm_dev)" }));
    await user.click(within(await screen.findByRole("dialog")).getByRole("button", { name: "Revoke key" }));
    expect(await screen.findByText("No API keys.")).toBeInTheDocument();
  });

  it("an admin cannot switch off their own admin flag", async () => {
    mockApi({
      [`GET /api/users/${ADMIN.user_id}`]: () => ADMIN,
      "GET /api/groups": () => ({ groups: [] }),
      [`GET /api/users/${ADMIN.user_id}/api-keys`]: () => [],
    });
    renderAt(`/admin/users/${ADMIN.user_id}`, "/admin/users/:id", <UserPage />);
    await screen.findByRole("heading", { name: "admin@example.com" });
    expect(screen.getByRole("switch", { name: "Admin" })).toBeDisabled();
    expect(screen.getByText(/cannot revoke your own admin status/)).toBeInTheDocument();
  });

  it("groups page lists every group with its members, from all users", async () => {
    mockApi({
      "GET /api/groups": () => ({ groups: ["qa", "devops"] }),
      "GET /api/users?limit=1000&offset=0": () => ({ items: [ADMIN, DEV, { ...DEV, user_id: "c", email: "ops@example.com", groups: ["devops", "qa"] }], total: 3, limit: 1000, offset: 0 }),
    });
    renderAt("/admin/groups", "/admin/groups", <Groups />);
    const devops = (await screen.findByRole("heading", { name: "devops" })).closest("li")!;
    expect(within(devops).getByText("2 members")).toBeInTheDocument();
    expect(within(devops).getByRole("link", { name: "ops@example.com" })).toHaveAttribute("href", "/admin/users/c");
    expect(membersByGroup(["a"], []).get("a")).toEqual([]);
  });
});
