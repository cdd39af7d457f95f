import * as TabsPrimitive from "@radix-ui/react-tabs";
import * as React from "react";
import { cn } from "@/lib/utils";

export const Tabs = TabsPrimitive.Root;
export function TabsList({ className, ...p }: React.ComponentProps<typeof TabsPrimitive.List>) {
  return <TabsPrimitive.List className={cn("flex flex-wrap gap-1 border-b border-[var(--border)] px-2", className)} {...p} />;
}
export function TabsTrigger({ className, ...p }: React.ComponentProps<typeof TabsPrimitive.Trigger>) {
  return (
    <TabsPrimitive.Trigger
      className={cn(
        "-mb-px border-b-2 border-transparent px-3 py-2 text-sm text-[var(--muted)] data-[state=active]:border-sky-600 data-[state=active]:text-[var(--fg)] dark:data-[state=active]:border-sky-400 cursor-pointer",
        className,
      )}
      {...p}
    />
  );
}
export const TabsContent = TabsPrimitive.Content;
