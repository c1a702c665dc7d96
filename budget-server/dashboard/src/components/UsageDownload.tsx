import { Download } from "lucide-react";
import { useState } from "react";
import { usageExportUrl, type ExportFormat } from "../lib/api";
import { Button } from "./ui/button";
import { Select } from "./ui/select";

const FORMATS: { id: ExportFormat; label: string }[] = [
  { id: "csv", label: "CSV" },
  { id: "jsonl", label: "JSON Lines" },
];

/**
 * Downloads the usage records of the page's range and limiter: a plain link to
 * `GET /api/usage/export`, so the browser streams the file to disk with the session cookie
 * (nothing is held in the page's memory). The link follows the filters as they change.
 */
export function UsageDownload({ from, to, limiterId, what }: { from?: string; to?: string; limiterId?: string; what: string }) {
  const [format, setFormat] = useState<ExportFormat>("csv");
  const href = usageExportUrl({ from, to, limiter_id: limiterId, format });
  const label = FORMATS.find((f) => f.id === format)!.label;
  return (
    <div className="flex items-center gap-2" data-testid="usage-download">
      <div className="w-32">
        <label htmlFor="export-format" className="sr-only">
          Download format
        </label>
        <Select id="export-format" value={format} onChange={(e) => setFormat(e.target.value as ExportFormat)} data-testid="export-format">
          {FORMATS.map((f) => (
            <option key={f.id} value={f.id}>
              {f.label}
            </option>
          ))}
        </Select>
      </div>
      <Button asChild variant="outline">
        <a href={href} download data-testid="usage-download-link" title={`Every request of ${what}, one per row, as ${label}`}>
          <Download aria-hidden />
          Download
        </a>
      </Button>
    </div>
  );
}
