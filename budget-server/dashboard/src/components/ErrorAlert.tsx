import { CircleAlert, RotateCw } from "lucide-react";
import { Button } from "./ui/button";

/** An inline error with an optional retry. */
export function ErrorAlert({ title = "Something went wrong", error, onRetry }: { title?: string; error: Error | string; onRetry?: () => void }) {
  const message = typeof error === "string" ? error : error.message;
  return (
    <div role="alert" data-testid="api-error" className="flex items-start gap-3 rounded-lg border border-red-200 bg-red-50 p-4 text-sm text-red-900">
      <CircleAlert className="mt-0.5 h-4 w-4 shrink-0 text-red-600" />
      <div className="grid flex-1 gap-1">
        <p className="font-medium">{title}</p>
        <p className="text-red-800/90">{message}</p>
      </div>
      {onRetry && (
        <Button variant="outline" size="sm" onClick={onRetry} className="border-red-200 bg-white">
          <RotateCw />
          Retry
        </Button>
      )}
    </div>
  );
}
