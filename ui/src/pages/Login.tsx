import { LogIn } from "lucide-react";
import { useState, type FormEvent } from "react";
import { Navigate, useNavigate, useSearchParams } from "react-router";
import { ErrorBox } from "@/components/common";
import { Button } from "@/components/ui/button";
import { Card, CardContent } from "@/components/ui/card";
import { Input, Label } from "@/components/ui/input";
import { getAccessToken, login } from "@/lib/auth";
import { useServerConfig } from "@/lib/auth-context";
import { useTitle } from "@/lib/hooks";

/** Where to go after signing in: only a path of this app, never another
 * site. A backslash (a browser reads it as a slash) or a control character
 * (dropped: "/\t/x" is "//x") is refused too. */
export function safeNext(next: string | null): string {
  // eslint-disable-next-line no-control-regex
  const odd = /[\\\u0000-\u001f\u007f]/;
  return next && next.startsWith("/") && !next.startsWith("//") && !odd.test(next) && !next.startsWith("/login") ? next : "/";
}

export default function Login() {
  useTitle("Sign in");
  const cfg = useServerConfig();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState(false);
  const next = safeNext(params.get("next"));

  if (!cfg.auth_required || getAccessToken()) return <Navigate to={next} replace />;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await login(email, password);
      navigate(next, { replace: true });
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="flex min-h-full items-center justify-center p-4">
      <Card className="w-full max-w-sm">
        <CardContent className="space-y-4 p-6">
          <h1 className="text-center text-2xl font-bold text-sky-700 dark:text-sky-400">Strøm</h1>
          <p className="text-center text-sm text-[var(--muted)]">Sign in to continue</p>
          {params.get("error") && <ErrorBox error={new Error(params.get("error")!)} />}
          {error && <ErrorBox error={error} />}
          {cfg.has_internal_auth && (
            <form onSubmit={submit} className="space-y-3">
              <div className="space-y-1">
                <Label htmlFor="email">Email</Label>
                <Input id="email" type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} autoFocus />
              </div>
              <div className="space-y-1">
                <Label htmlFor="password">Password</Label>
                <Input id="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
              </div>
              <Button type="submit" className="w-full" disabled={busy}>
                <LogIn className="h-4 w-4" aria-hidden /> {busy ? "Signing in…" : "Sign in"}
              </Button>
            </form>
          )}
          {cfg.oidc_providers.length > 0 && (
            <div className="space-y-2">
              {cfg.has_internal_auth && <div className="text-center text-xs text-[var(--muted)]">or</div>}
              {cfg.oidc_providers.map((p) => (
                <Button key={p.id} asChild variant="outline" className="w-full">
                  <a href={`/api/auth/oidc/${encodeURIComponent(p.id)}`}>Continue with {p.display_name || p.id}</a>
                </Button>
              ))}
            </div>
          )}
          {!cfg.has_internal_auth && cfg.oidc_providers.length === 0 && (
            <p className="text-sm text-[var(--muted)]">This server requires sign-in but offers no login method the UI can use.</p>
          )}
        </CardContent>
      </Card>
    </main>
  );
}
