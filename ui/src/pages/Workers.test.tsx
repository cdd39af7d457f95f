import { render, screen, within } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Worker } from "@/lib/types";
import { mockApi } from "@/test/fetchmock";
import Workers from "./Workers";

const worker = (name: string, extra: Partial<Worker> = {}): Worker => ({
  worker_id: `${name}-0000-0000-0000-000000000000`,
  name,
  capabilities: ["shell"],
  tags: ["dev"],
  status: "active",
  registered_at: new Date().toISOString(),
  last_heartbeat_at: new Date().toISOString(),
  ...extra,
});

afterEach(() => vi.unstubAllGlobals());

describe("workers", () => {
  it("shows each worker's slots as the API gives them (max_concurrent), — when the worker did not say", async () => {
    mockApi({ "GET /api/workers": () => ({ items: [worker("dev-worker-1", { max_concurrent: 4 }), worker("old-worker")], total: 2 }) });
    render(
      <MemoryRouter>
        <Workers />
      </MemoryRouter>,
    );
    const slotsOf = async (name: string) => {
      const row = (await screen.findByText(name)).closest("tr")!;
      const col = screen.getAllByRole("columnheader").findIndex((h) => h.textContent === "Slots");
      return within(row).getAllByRole("cell")[col].textContent;
    };
    expect(await slotsOf("dev-worker-1")).toBe("4");
    expect(await slotsOf("old-worker")).toBe("—");
  });

  it("says a worker with tags is exclusive (reserved for steps that require them all), not one without tags", async () => {
    mockApi({
      "GET /api/workers": () => ({
        items: [worker("gpu-box", { tags: ["gpu"], exclusive: true }), worker("shared-box"), worker("untagged-worker", { tags: [], exclusive: true })],
        total: 3,
      }),
    });
    render(
      <MemoryRouter>
        <Workers />
      </MemoryRouter>,
    );
    const tagsOf = async (name: string) => {
      const row = (await screen.findByText(name)).closest("tr")!;
      const col = screen.getAllByRole("columnheader").findIndex((h) => h.textContent === "Tags");
      return within(row).getAllByRole("cell")[col].textContent;
    };
    expect(await tagsOf("gpu-box")).toBe("gpu (exclusive)");
    expect(await tagsOf("shared-box")).toBe("dev");
    expect(await tagsOf("untagged-worker")).toBe("—");
    expect(within((await screen.findByText("gpu-box")).closest("td")!).getByText(/shell · #gpu · exclusive/)).toBeTruthy();
  });
});
