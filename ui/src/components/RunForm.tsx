import { Play } from "lucide-react";
import { useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { BAD_NUMBER, buildInput, initialValues, normaliseInputs, type FormValues, type InputField } from "@/lib/inputs";
import type { RawInputField } from "@/lib/types";
import { ErrorBox } from "./common";
import { Button } from "./ui/button";
import { Checkbox } from "./ui/checkbox";
import { Input, Label, Select, Textarea } from "./ui/input";
import { Switch } from "./ui/switch";

function FieldControl({ f, value, set, invalid }: { f: InputField; value: FormValues[string]; set: (v: FormValues[string]) => void; invalid: boolean }) {
  const id = `in-${f.key}`;
  const common = { id, "aria-invalid": invalid || undefined, "aria-describedby": `${id}-help` };
  switch (f.kind) {
    case "boolean":
      return (
        <div>
          <Switch {...common} checked={value === true} onCheckedChange={(c) => set(c)} aria-label={f.label} />
        </div>
      );
    case "select":
      if (f.allowCustom) {
        return (
          <>
            <Input {...common} list={`${id}-options`} value={String(value)} onChange={(e) => set(e.target.value)} required={f.required && !f.hasDefault} />
            <datalist id={`${id}-options`}>
              {f.options.map((o) => (
                <option key={o} value={o} />
              ))}
            </datalist>
          </>
        );
      }
      return (
        <Select {...common} value={String(value)} onChange={(e) => set(e.target.value)}>
          {(!f.required || !f.hasDefault) && <option value="">—</option>}
          {f.options.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </Select>
      );
    case "multiselect": {
      const arr = Array.isArray(value) ? value : [];
      const extra = arr.filter((v) => !f.options.includes(v));
      return (
        <fieldset {...common} className="flex flex-wrap gap-x-4 gap-y-2">
          <legend className="sr-only">{f.label}</legend>
          {[...f.options, ...extra].map((o) => (
            <label key={o} className="flex items-center gap-1.5 text-sm">
              <Checkbox checked={arr.includes(o)} onCheckedChange={(c) => set(c ? [...arr, o] : arr.filter((x) => x !== o))} />
              {o}
            </label>
          ))}
          {f.allowCustom && (
            <Input
              aria-label={`Add a value to ${f.label}`}
              placeholder="Add a value and press Enter"
              className="h-8 w-56"
              onKeyDown={(e) => {
                const v = e.currentTarget.value.trim();
                if (e.key === "Enter" && v) {
                  e.preventDefault();
                  if (!arr.includes(v)) set([...arr, v]);
                  e.currentTarget.value = "";
                }
              }}
            />
          )}
        </fieldset>
      );
    }
    case "json":
      return <Textarea {...common} value={String(value)} onChange={(e) => set(e.target.value)} rows={4} spellCheck={false} />;
    default: {
      const type =
        f.secret ? "password" : f.kind === "integer" || f.kind === "number" ? "number" : f.kind === "date" ? "date" : f.kind === "datetime" ? "datetime-local" : "text";
      return (
        <Input
          {...common}
          type={type}
          step={f.kind === "number" ? "any" : undefined}
          autoComplete={f.secret ? "off" : undefined}
          // A number box the browser cannot read ("1e", "--1") has the
          // value "": kept as BAD_NUMBER, so it is a problem, not an empty
          // (left out) field; the box keeps showing what was typed.
          value={value === BAD_NUMBER ? "" : String(value)}
          onChange={(e) => set(type === "number" && e.target.validity?.badInput ? BAD_NUMBER : e.target.value)}
          placeholder={f.hasDefault && f.default != null && !f.secret ? `default: ${String(f.default)}` : undefined}
        />
      );
    }
  }
}

/** The Run form generated from a task's input schema. */
export function RunForm({
  input,
  previous,
  onRun,
}: {
  input: RawInputField[] | Record<string, RawInputField>;
  previous?: Record<string, unknown> | null;
  onRun: (input: Record<string, unknown>) => Promise<void>;
}) {
  const fields = useMemo(() => normaliseInputs(input), [input]);
  const [values, setValues] = useState<FormValues>(() => initialValues(fields, previous));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState(false);

  // After a refused submit, the first field with a problem gets the focus
  // (once its message is drawn: it is the field's description), so that a
  // keyboard or screen reader user learns what to fix.
  const focusProblem = useRef(false);
  useEffect(() => {
    if (!focusProblem.current) return;
    focusProblem.current = false;
    const f = fields.find((x) => errors[x.key]);
    const el = f && document.getElementById(`in-${f.key}`);
    const target = el && (el.matches("input, select, textarea, button") ? el : el.querySelector<HTMLElement>("input, select, textarea, button"));
    target?.focus();
  }, [errors, fields]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const { input: body, errors: errs } = buildInput(fields, values);
    setErrors(errs);
    if (Object.keys(errs).length > 0) {
      focusProblem.current = true;
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await onRun(body);
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={submit} className="space-y-4" noValidate aria-label="Run task">
      {fields.length === 0 && <p className="text-sm text-[var(--muted)]">This task takes no input.</p>}
      {fields.map((f) => (
        <div key={f.key} className="space-y-1">
          <Label htmlFor={`in-${f.key}`}>
            {f.label}
            {f.required && !f.hasDefault && <span className="text-red-700 dark:text-red-400" aria-label="required"> *</span>}
            <span className="ml-2 text-xs font-normal text-[var(--muted)]">{f.type}{f.secret ? " · secret" : ""}</span>
          </Label>
          <FieldControl f={f} value={values[f.key]} set={(v) => setValues((old) => ({ ...old, [f.key]: v }))} invalid={!!errors[f.key]} />
          <p id={`in-${f.key}-help`} className="text-xs text-[var(--muted)]">
            {errors[f.key] ? <span className="text-red-700 dark:text-red-400">{errors[f.key]}</span> : f.description}
          </p>
        </div>
      ))}
      {error && <ErrorBox error={error} />}
      <Button type="submit" disabled={busy}>
        <Play className="h-4 w-4" aria-hidden /> {busy ? "Starting…" : "Run"}
      </Button>
    </form>
  );
}
