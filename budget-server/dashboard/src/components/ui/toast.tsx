import * as ToastPrimitive from "@radix-ui/react-toast";
import { CircleAlert, CircleCheck, X } from "lucide-react";
import * as React from "react";
import { cn } from "../../lib/utils";

export type ToastVariant = "default" | "success" | "error";
export interface ToastOptions {
  title: string;
  description?: string;
  variant?: ToastVariant;
}
interface ToastItem extends ToastOptions {
  id: number;
  open: boolean;
}

const ToastContext = React.createContext<(t: ToastOptions) => void>(() => {});

/** `const toast = useToast(); toast({ title, description, variant: "error" })`. */
export function useToast() {
  return React.useContext(ToastContext);
}

export function Toaster({ children }: { children: React.ReactNode }) {
  const [items, setItems] = React.useState<ToastItem[]>([]);
  const nextId = React.useRef(1);
  const push = React.useCallback((t: ToastOptions) => {
    const id = nextId.current++;
    setItems((prev) => [...prev.slice(-3), { ...t, id, open: true }]);
  }, []);
  const close = (id: number) => {
    setItems((prev) => prev.map((t) => (t.id === id ? { ...t, open: false } : t)));
    window.setTimeout(() => setItems((prev) => prev.filter((t) => t.id !== id)), 300);
  };
  return (
    <ToastContext.Provider value={push}>
      <ToastPrimitive.Provider swipeDirection="right" duration={5000}>
        {children}
        {items.map((t) => (
          <ToastPrimitive.Root
            key={t.id}
            open={t.open}
            onOpenChange={(o) => !o && close(t.id)}
            duration={t.variant === "error" ? 8000 : 4000}
            data-testid="toast"
            data-variant={t.variant ?? "default"}
            className={cn(
              "pointer-events-auto relative flex w-full items-start gap-3 overflow-hidden rounded-lg border bg-background p-4 pr-8 shadow-lg data-[state=open]:animate-slide-in",
              t.variant === "error" && "border-red-200 bg-red-50 text-red-900",
            )}
          >
            {t.variant === "error" ? (
              <CircleAlert className="mt-0.5 h-4 w-4 shrink-0 text-red-600" />
            ) : t.variant === "success" ? (
              <CircleCheck className="mt-0.5 h-4 w-4 shrink-0 text-emerald-600" />
            ) : null}
            <div className="grid gap-1">
              <ToastPrimitive.Title className="text-sm font-semibold">{t.title}</ToastPrimitive.Title>
              {t.description && <ToastPrimitive.Description className="text-sm opacity-90">{t.description}</ToastPrimitive.Description>}
            </div>
            <ToastPrimitive.Close className="absolute right-2 top-2 rounded-md p-1 opacity-60 hover:opacity-100" aria-label="Dismiss">
              <X className="h-4 w-4" />
            </ToastPrimitive.Close>
          </ToastPrimitive.Root>
        ))}
        <ToastPrimitive.Viewport className="fixed bottom-0 right-0 z-[100] flex max-h-screen w-full flex-col gap-2 p-4 sm:max-w-[420px]" />
      </ToastPrimitive.Provider>
    </ToastContext.Provider>
  );
}
