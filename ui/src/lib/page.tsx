import { lazy, useState, type ComponentType } from "react";

type Module = { default: ComponentType };

/** A page loaded on demand, like React.lazy, with preload(): a page whose
 * code has arrived renders at once instead of suspending. (React shows a
 * suspended boundary's content no sooner than 300 ms after its fallback,
 * which would add that much to every first page load.) */
export function page(load: () => Promise<Module>) {
  let mod: Module | undefined;
  let pending: Promise<Module> | undefined;
  const preload = () =>
    (pending ??= load().then(
      (m) => (mod = m),
      (e) => {
        pending = undefined; // a failed chunk may be asked again
        throw e;
      },
    ));
  const Lazy = lazy(preload);
  function Page() {
    // Chosen once per mount: switching from Lazy to the module later
    // would remount the page and lose its state.
    const [C] = useState<ComponentType>(() => mod?.default ?? Lazy);
    return <C />;
  }
  Page.preload = preload;
  return Page;
}
