import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { RunForm } from "./RunForm";

describe("RunForm", () => {
  it("renders a control per input type and submits typed values", async () => {
    const onRun = vi.fn().mockResolvedValue(undefined);
    render(
      <RunForm
        input={{
          name: { type: "string", required: true, description: "who to greet" },
          count: { type: "integer", default: 2 },
          loud: { type: "boolean" },
          color: { type: "string", options: ["red", "green"] },
          day: { type: "date" },
          token: { type: "text", secret: true },
        }}
        onRun={onRun}
      />,
    );
    const user = userEvent.setup();
    expect(screen.getByLabelText(/count/)).toHaveAttribute("type", "number");
    expect(screen.getByLabelText(/day/)).toHaveAttribute("type", "date");
    expect(screen.getByLabelText(/token/)).toHaveAttribute("type", "password");
    expect(screen.getByText("who to greet")).toBeInTheDocument();

    await user.click(screen.getByRole("button", { name: "Run" }));
    expect(await screen.findByText("Required.")).toBeInTheDocument();
    expect(onRun).not.toHaveBeenCalled();

    await user.type(screen.getByLabelText(/name/), "Ada");
    await user.click(screen.getByRole("switch"));
    await user.selectOptions(screen.getByLabelText(/color/), "green");
    await user.type(screen.getByLabelText(/token/), "s3cret");
    await user.click(screen.getByRole("button", { name: "Run" }));
    expect(onRun).toHaveBeenCalledWith({ name: "Ada", count: 2, loud: true, color: "green", token: "s3cret" });
  });

  it("shows the server's error with every detail", async () => {
    const { ApiError } = await import("@/lib/api");
    const onRun = vi.fn().mockRejectedValue(new ApiError(400, "invalid input", ['input "name": expected string']));
    render(<RunForm input={[]} onRun={onRun} />);
    expect(screen.getByText("This task takes no input.")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Run" }));
    expect(await screen.findByRole("alert")).toHaveTextContent('input "name": expected string');
  });
  it("moves the focus to the first field with a problem, whose description says it", async () => {
    const onRun = vi.fn().mockResolvedValue(undefined);
    render(
      <RunForm
        input={{
          note: { type: "string", order: 1 },
          n: { type: "integer", required: true, order: 2 },
          obj: { type: "object", order: 3 },
        }}
        onRun={onRun}
      />,
    );
    const user = userEvent.setup();
    await user.type(screen.getByLabelText(/obj/), "{{");
    await user.click(screen.getByRole("button", { name: "Run" }));
    const n = document.getElementById("in-n")!;
    expect(n).toHaveFocus();
    expect(n).toHaveAttribute("aria-invalid", "true");
    expect(n).toHaveAccessibleDescription("Required.");
    await user.type(n, "3");
    await user.click(screen.getByRole("button", { name: "Run" }));
    expect(screen.getByLabelText(/obj/)).toHaveFocus();
    expect(screen.getByLabelText(/obj/)).toHaveAccessibleDescription("Enter valid JSON.");
    expect(onRun).not.toHaveBeenCalled();
  });
});
