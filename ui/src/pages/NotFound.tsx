import { Link } from "react-router";
import { useTitle } from "@/lib/hooks";

export default function NotFound() {
  useTitle("Not found");
  return (
    <div className="p-8 text-center">
      <h1 className="text-xl font-semibold">Page not found</h1>
      <p className="mt-2 text-sm text-[var(--muted)]">
        <Link className="text-sky-700 underline dark:text-sky-400" to="/">
          Back to the dashboard
        </Link>
      </p>
    </div>
  );
}
