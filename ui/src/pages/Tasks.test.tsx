import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import Tasks from "./Tasks";

afterEach(() => vi.unstubAllGlobals());

const json = (v: unknown, status = 200) => new Response(JSON.stringify(v), { status, headers: { "Content-Type": "application/json" } });

describe("Tasks", () => {
  it("offers Try again when the server did not answer, and shows the tasks once it does", async () => {
    let up = false;
    vi.stubGlobal(
      "fetch",
      vi.fn(async (path: string) => {
        if (!up) throw new TypeError("Failed to fetch");
        if (path === "/api/workspaces") return json([{ name: "default", revision: "abcdef0123", errors: [] }]);
        return json([{ name: "hello-world", description: "Say hello" }]);
      }),
    );
    render(
      <MemoryRouter>
        <Tasks />
      </MemoryRouter>,
    );
    expect(await screen.findByRole("alert")).toHaveTextContent("The server did not answer");
    up = true;
    await userEvent.setup().click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByRole("link", { name: /hello-world/ })).toBeInTheDocument();
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("offers no Try again for an answer that will not change (a 4xx)", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => json({ error: "you may not list workspaces" }, 403)));
    render(
      <MemoryRouter>
        <Tasks />
      </MemoryRouter>,
    );
    expect(await screen.findByRole("alert")).toHaveTextContent("you may not list workspaces");
    expect(screen.queryByRole("button", { name: "Try again" })).toBeNull();
  });
});
