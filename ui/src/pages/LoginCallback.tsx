import { useEffect } from "react";
import { useNavigate } from "react-router";
import { Spinner } from "@/components/common";
import { readOidcFragment } from "@/lib/auth";

/** /login/callback#access_token=…&refresh_token=… (or #error=…): where the
 * server's OIDC callback sends the browser. */
export default function LoginCallback() {
  const navigate = useNavigate();
  useEffect(() => {
    const r = readOidcFragment(window.location.hash);
    history.replaceState(null, "", window.location.pathname); // drop the tokens from the address bar
    if (r.ok) navigate("/", { replace: true });
    else navigate(`/login?error=${encodeURIComponent(r.error ?? "Sign-in failed.")}`, { replace: true });
  }, [navigate]);
  return <Spinner label="Signing in…" />;
}
