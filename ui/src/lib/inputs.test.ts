import { describe, expect, it } from "vitest";
import { BAD_NUMBER, buildInput, initialValues, normaliseInputs } from "./inputs";

describe("normaliseInputs", () => {
  it("reads the list shape (name, type, enum, has_default)", () => {
    const f = normaliseInputs([
      { name: "who", type: "string", required: true },
      { name: "n", type: "integer", default: 2, has_default: true },
      { name: "color", type: "string", enum: ["red", "blue"] },
    ]);
    expect(f.map((x) => [x.key, x.kind])).toEqual([
      ["who", "text"],
      ["n", "integer"],
      ["color", "select"],
    ]);
    expect(f[1].hasDefault).toBe(true);
  });

  it("reads the workflow language's map shape with every option, sorted by order", () => {
    const f = normaliseInputs({
      env: { type: "text", options: ["dev", "prod"], allow_custom: true, order: 2, name: "Environment" },
      when: { type: "datetime", order: 1 },
      day: { type: "date" },
      ok: { type: "bool", default: true },
      ratio: { type: "number" },
      regions: { type: "text", options: ["eu", "us"], multiple: true },
      token: { type: "text", secret: true, description: "API token" },
    });
    expect(f.map((x) => x.key)).toEqual(["when", "env", "day", "ok", "ratio", "regions", "token"]);
    const by = Object.fromEntries(f.map((x) => [x.key, x]));
    expect(by.env.label).toBe("Environment");
    expect(by.env.kind).toBe("select");
    expect(by.env.allowCustom).toBe(true);
    expect(by.when.kind).toBe("datetime");
    expect(by.day.kind).toBe("date");
    expect(by.ok.kind).toBe("boolean");
    expect(by.ratio.kind).toBe("number");
    expect(by.regions.kind).toBe("multiselect");
    expect(by.token.secret).toBe(true);
  });
});

describe("buildInput", () => {
  const fields = normaliseInputs({
    name: { type: "string", required: true },
    n: { type: "integer", default: 3 },
    r: { type: "number" },
    ok: { type: "boolean" },
    size: { type: "integer", options: ["1", "2"] },
    tags: { type: "text", options: ["a", "b"], multiple: true, required: true },
    env: { type: "text", options: ["dev"], allow_custom: true },
    at: { type: "datetime" },
    obj: { type: "object" },
  });

  it("converts values to the input's types and leaves empty optional fields out", () => {
    const v = initialValues(fields);
    expect(v.n).toBe("3");
    const { input, errors } = buildInput(fields, {
      ...v,
      name: "Ada",
      r: "2.5",
      ok: true,
      size: "2",
      tags: ["b"],
      env: "staging",
      at: "2026-12-06T10:30",
      obj: '{"a": [1]}',
    });
    expect(errors).toEqual({});
    expect(input).toEqual({
      name: "Ada",
      n: 3,
      r: 2.5,
      ok: true,
      size: 2,
      tags: ["b"],
      env: "staging",
      at: new Date("2026-12-06T10:30").toISOString(),
      obj: { a: [1] },
    });
  });

  it("reports every problem by field", () => {
    const { errors } = buildInput(fields, { ...initialValues(fields), n: "1.5", r: "x", obj: "{", tags: [] });
    expect(errors).toEqual({
      name: "Required.",
      n: "Enter a whole number.",
      r: "Enter a number.",
      obj: "Enter valid JSON.",
      tags: "Choose at least one.",
    });
  });

  it("refuses a whole number JavaScript cannot hold exactly, rather than send another one", () => {
    // 9007199254740993 parsed is 9007199254740992: the job would run with
    // a number nobody typed.
    for (const n of ["9007199254740993", "-9007199254740993", "99999999999999999999"]) {
      const { input, errors } = buildInput(fields, { ...initialValues(fields), name: "x", n });
      expect(errors.n).toMatch(/^Enter a whole number between -9007199254740991 and 9007199254740991/);
      expect(input).not.toHaveProperty("n");
    }
    expect(buildInput(fields, { ...initialValues(fields), name: "x", n: "9007199254740991" }).input.n).toBe(9007199254740991);
    expect(buildInput(fields, { ...initialValues(fields), name: "x", n: " -42 " }).input.n).toBe(-42);
  });

  it("reports a number box the browser could not read (\"1e\"), which it gives as empty", () => {
    const f = normaliseInputs({ n: { type: "integer" }, r: { type: "number" } });
    expect(buildInput(f, { n: BAD_NUMBER, r: BAD_NUMBER })).toEqual({ input: {}, errors: { n: "Enter a whole number.", r: "Enter a number." } });
  });

  it("prefills a re-run with the previous inputs over the defaults", () => {
    const v = initialValues(fields, { name: "Bo", n: 7, ok: true, tags: ["a", "b"], obj: { x: 1 } });
    expect(v.name).toBe("Bo");
    expect(v.n).toBe("7");
    expect(v.ok).toBe(true);
    expect(v.tags).toEqual(["a", "b"]);
    expect(JSON.parse(v.obj as string)).toEqual({ x: 1 });
  });

  it("prefills a date-time in the browser's time zone, so that a re-run sends the same instant", () => {
    const tz = process.env.TZ;
    process.env.TZ = "Asia/Kolkata"; // UTC+5:30
    try {
      const f = normaliseInputs({ when: { type: "datetime" } });
      const v = initialValues(f, { when: "2026-12-07T09:00:00.000Z" });
      expect(v.when).toBe("2026-12-07T14:30"); // what the picker shows: local time
      expect(buildInput(f, v).input.when).toBe("2026-12-07T09:00:00.000Z");
      // A value that is not a date is left for the user to see.
      expect(initialValues(f, { when: "soon" }).when).toBe("soon");
    } finally {
      process.env.TZ = tz;
    }
  });

  it("does not prefill a masked secret", () => {
    const f = normaliseInputs({ token: { type: "text", secret: true } });
    expect(initialValues(f, { token: "***" }).token).toBe("");
  });
});

describe("the lang engineer's list shape", () => {
  it("reads label, enum, multiple, secret and order", () => {
    const f = normaliseInputs([
      { name: "ports", type: "integer", multiple: true, order: 2 },
      { name: "env", type: "text", label: "Environment", enum: ["dev", "prod"], allow_custom: true, order: 1 },
      { name: "pw", type: "string", secret: true },
    ]);
    expect(f.map((x) => [x.key, x.label, x.kind])).toEqual([
      ["env", "Environment", "select"],
      ["ports", "ports", "multiselect"],
      ["pw", "pw", "text"],
    ]);
    expect(f[1].allowCustom).toBe(true);
    expect(buildInput(f, { env: "qa", ports: ["80", "443"], pw: "x" })).toEqual({ input: { env: "qa", ports: [80, 443], pw: "x" }, errors: {} });
    expect(buildInput(f, { env: "qa", ports: ["80", "web"], pw: "" }).errors).toEqual({ ports: "Enter numbers only." });
  });
});
