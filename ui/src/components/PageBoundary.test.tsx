import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Suspense } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { page } from "@/lib/page";
import { PageBoundary } from "./PageBoundary";

afterEach(() => vi.restoreAllMocks());

describe("PageBoundary", () => {
  it("shows a page whose code did not arrive as an error with Reload, and keeps the app around it", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {}); // React reports the caught error
    const load = vi.fn(async () => {
      throw new TypeError("Failed to fetch dynamically imported module: http://x/assets/Workers-abc.js");
    });
    const P = page(load);
    const reload = vi.fn();
    render(
      <div>
        <nav>navigation</nav>
        <PageBoundary reload={reload}>
          <Suspense fallback={<p>loading</p>}>
            <P />
          </Suspense>
        </PageBoundary>
      </div>,
    );
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("This page could not be loaded: the server did not answer.");
    expect(alert).toHaveTextContent("Workers-abc.js");
    expect(screen.getByText("navigation")).toBeInTheDocument(); // the app is still there
    expect(load).toHaveBeenCalledTimes(1);
    await userEvent.setup().click(screen.getByRole("button", { name: "Reload" }));
    expect(reload).toHaveBeenCalledTimes(1);
  });

  it("shows what a page threw while rendering, and Try again renders it anew", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    let broken = true;
    function Page() {
      if (broken) throw new Error("steps is not iterable");
      return <h1>Job</h1>;
    }
    render(
      <PageBoundary>
        <Page />
      </PageBoundary>,
    );
    expect(screen.getByRole("alert")).toHaveTextContent("This page failed to show.steps is not iterable");
    broken = false;
    await userEvent.setup().click(screen.getByRole("button", { name: "Try again" }));
    expect(screen.getByRole("heading", { name: "Job" })).toBeInTheDocument();
  });
});
