// The Run form's model: a task's inputs normalised from either API shape,
// and the conversion of form values to the execute request's input.
import type { RawInputField } from "./types";

export type InputKind = "text" | "number" | "integer" | "boolean" | "date" | "datetime" | "select" | "multiselect" | "json";

export interface InputField {
  key: string;
  label: string;
  kind: InputKind;
  type: string;
  description?: string;
  required: boolean;
  secret: boolean;
  options: string[];
  allowCustom: boolean;
  hasDefault: boolean;
  default?: unknown;
  order: number;
}

function kindOf(type: string, f: RawInputField, options: string[]): InputKind {
  const t = type.toLowerCase();
  if (options.length > 0 || f.allow_custom) return f.multiple ? "multiselect" : "select";
  if (f.multiple) return "multiselect";
  switch (t) {
    case "bool":
    case "boolean":
      return "boolean";
    case "integer":
    case "int":
      return "integer";
    case "number":
    case "float":
      return "number";
    case "date":
      return "date";
    case "datetime":
      return "datetime";
    case "array":
    case "object":
      return "json";
    default:
      return "text"; // text, string, and anything unknown
  }
}

export function normaliseInputs(input: RawInputField[] | Record<string, RawInputField> | null | undefined): InputField[] {
  if (!input) return [];
  const entries: [string, RawInputField][] = Array.isArray(input)
    ? input.map((f) => [f.name ?? "", f])
    : Object.entries(input).map(([k, f]) => [k, f ?? {}]);
  const fields = entries
    .filter(([k]) => k !== "")
    .map(([key, f], i): InputField => {
      const options = (f.options ?? f.enum ?? []).map((o) => String(o));
      const type = f.type ?? "string";
      const hasDefault = f.has_default ?? f.default !== undefined;
      return {
        key,
        // `label` (or, in the map shape, `name`) is the display name; in the
        // list shape `name` is the key.
        label: f.label || (!Array.isArray(input) && f.name ? f.name : key),
        kind: kindOf(type, f, options),
        type,
        description: f.description,
        required: !!f.required,
        secret: !!f.secret,
        options,
        // A list without options takes any values.
        allowCustom: !!f.allow_custom || (!!f.multiple && options.length === 0),
        hasDefault,
        default: f.default,
        order: typeof f.order === "number" ? f.order : 1e6 + i,
      };
    });
  return fields.sort((a, b) => a.order - b.order);
}

export type FormValues = Record<string, string | boolean | string[]>;

/** The value of a number box whose text the browser cannot read as a
 * number ("1e"): the box's value is then "", which read as empty. */
export const BAD_NUMBER = "\u0000not a number";

/** The form's starting values: previous inputs (a re-run) over defaults. */
export function initialValues(fields: InputField[], previous?: Record<string, unknown> | null): FormValues {
  const v: FormValues = {};
  for (const f of fields) {
    const src = previous && f.key in previous ? previous[f.key] : f.hasDefault ? f.default : undefined;
    v[f.key] = toFormValue(f, src);
  }
  return v;
}

function toFormValue(f: InputField, src: unknown): string | boolean | string[] {
  if (f.kind === "boolean") return src === true || src === "true";
  if (f.kind === "multiselect") return Array.isArray(src) ? src.map(String) : src == null || src === "" ? [] : [String(src)];
  if (src == null) return "";
  if (f.kind === "json") return typeof src === "string" ? src : JSON.stringify(src, null, 2);
  if (f.kind === "datetime" && typeof src === "string") return localDateTime(src);
  if (f.secret && src === "***") return ""; // a masked value cannot be re-sent
  return String(src);
}

const unsafeInteger = `Enter a whole number between ${Number.MIN_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER} (a larger one cannot be sent exactly).`;

/** A date-time as the picker (datetime-local) shows it: in the browser's
 * time zone, as buildInput reads it back. (Cutting "…T09:00:00Z" to
 * "…T09:00" showed UTC as local time: each re-run moved the instant by the
 * zone's offset.) A value that is not a date is kept as it is. */
function localDateTime(src: string): string {
  const d = new Date(src);
  if (isNaN(d.getTime())) return src;
  const p = (n: number) => String(n).padStart(2, "0");
  const hm = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  return d.getSeconds() ? `${hm}:${p(d.getSeconds())}` : hm;
}

/** Converts form values to the execute body's input; returns the problems
 * found by field (empty optional fields are left out, so the server's
 * defaults apply). */
export function buildInput(fields: InputField[], values: FormValues): { input: Record<string, unknown>; errors: Record<string, string> } {
  const input: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const f of fields) {
    const v = values[f.key];
    if (f.kind === "boolean") {
      input[f.key] = !!v;
      continue;
    }
    if (f.kind === "multiselect") {
      const arr = Array.isArray(v) ? v : [];
      if (arr.length === 0) {
        if (f.required) errors[f.key] = "Choose at least one.";
        continue;
      }
      if (/^(integer|int|number|float)$/.test(f.type)) {
        const nums = arr.map(Number);
        if (nums.some((n) => !isFinite(n) || (/^int/.test(f.type) && !Number.isInteger(n)))) errors[f.key] = "Enter numbers only.";
        else if (/^int/.test(f.type) && nums.some((n) => !Number.isSafeInteger(n))) errors[f.key] = unsafeInteger;
        else input[f.key] = nums;
        continue;
      }
      input[f.key] = arr;
      continue;
    }
    const s = typeof v === "string" ? v : "";
    if (s === BAD_NUMBER) {
      errors[f.key] = f.kind === "integer" ? "Enter a whole number." : "Enter a number.";
      continue;
    }
    if (s.trim() === "") {
      if (f.required && !f.hasDefault) errors[f.key] = "Required.";
      continue;
    }
    switch (f.kind) {
      case "integer": {
        // Beyond 2^53 a JSON number in the browser is no longer the one typed.
        if (!/^[-+]?\d+$/.test(s.trim())) errors[f.key] = "Enter a whole number.";
        else if (!Number.isSafeInteger(parseInt(s, 10))) errors[f.key] = unsafeInteger;
        else input[f.key] = parseInt(s, 10);
        break;
      }
      case "number": {
        const n = Number(s);
        if (!isFinite(n)) errors[f.key] = "Enter a number.";
        else input[f.key] = n;
        break;
      }
      case "datetime": {
        const d = new Date(s);
        if (isNaN(d.getTime())) errors[f.key] = "Enter a date and time.";
        else input[f.key] = d.toISOString();
        break;
      }
      case "json": {
        try {
          input[f.key] = JSON.parse(s);
        } catch {
          errors[f.key] = "Enter valid JSON.";
        }
        break;
      }
      case "select": {
        if (!f.allowCustom && f.options.length > 0 && !f.options.includes(s)) errors[f.key] = "Choose one of the options.";
        else if (/^(integer|int|number|float)$/.test(f.type) && isFinite(Number(s))) input[f.key] = Number(s);
        else input[f.key] = s;
        break;
      }
      default:
        input[f.key] = s;
    }
  }
  return { input, errors };
}
