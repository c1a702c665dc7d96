import { ArrowDown, ArrowUp, ArrowUpDown } from "lucide-react";
import { useMemo, useState } from "react";
import { nextSort, sortRows, type SortState } from "../lib/sort";
import { cn } from "../lib/utils";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "./ui/table";

export interface Column<T> {
  key: keyof T & string;
  label: string;
  numeric?: boolean;
  render?: (row: T) => React.ReactNode;
  className?: string;
}

/** A table whose column headers sort it (click again to reverse). */
export function SortableTable<T>({
  rows,
  columns,
  initial,
  rowKey,
  testId,
  rowProps,
  empty = "No data yet.",
}: {
  rows: readonly T[];
  columns: Column<T>[];
  initial: SortState<keyof T & string>;
  rowKey: (row: T) => string;
  testId?: string;
  rowProps?: (row: T) => Record<string, string | undefined>;
  empty?: string;
}) {
  const [sort, setSort] = useState(initial);
  const sorted = useMemo(() => sortRows(rows, sort), [rows, sort]);
  return (
    <Table data-testid={testId}>
      <TableHeader>
        <TableRow className="hover:bg-transparent">
          {columns.map((c) => {
            const active = sort.key === c.key;
            const Icon = active ? (sort.dir === "asc" ? ArrowUp : ArrowDown) : ArrowUpDown;
            return (
              <TableHead
                key={c.key}
                className={cn(c.numeric && "text-right", c.className)}
                aria-sort={active ? (sort.dir === "asc" ? "ascending" : "descending") : "none"}
              >
                <button
                  type="button"
                  data-testid={testId ? `${testId}-sort-${c.key}` : undefined}
                  onClick={() => setSort((s) => nextSort(s, c.key, !!c.numeric))}
                  className={cn(
                    "inline-flex items-center gap-1 uppercase tracking-wide hover:text-foreground",
                    c.numeric && "flex-row-reverse",
                    active && "text-foreground",
                  )}
                >
                  {c.label}
                  <Icon className={cn("h-3 w-3", !active && "opacity-40")} />
                </button>
              </TableHead>
            );
          })}
        </TableRow>
      </TableHeader>
      <TableBody>
        {sorted.length === 0 ? (
          <TableRow className="hover:bg-transparent">
            <TableCell colSpan={columns.length} className="py-8 text-center text-muted-foreground">
              {empty}
            </TableCell>
          </TableRow>
        ) : (
          sorted.map((row) => (
            <TableRow key={rowKey(row)} {...(rowProps ? rowProps(row) : {})}>
              {columns.map((c) => (
                <TableCell key={c.key} className={cn(c.numeric && "text-right tabular", c.className)} data-col={c.key}>
                  {c.render ? c.render(row) : String(row[c.key] ?? "")}
                </TableCell>
              ))}
            </TableRow>
          ))
        )}
      </TableBody>
    </Table>
  );
}
