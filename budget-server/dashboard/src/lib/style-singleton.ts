// A drop-in for `react-style-singleton` (vite.config.ts aliases it here). Radix's dialogs lock
// page scrolling through react-remove-scroll, which adds a few CSS rules at run time; the
// original does it with an inline <style> element, which the server's Content-Security-Policy
// (`style-src 'self'`, no 'unsafe-inline') blocks. This one adds the same rules as a
// constructed stylesheet (`document.adoptedStyleSheets`), a script-side CSSOM call that the
// policy does not restrict: only script that `script-src 'self'` already admitted can make it.
// Browsers without constructed stylesheets just skip the scroll lock.
import { useEffect } from "react";

export function stylesheetSingleton() {
  let counter = 0;
  let sheet: CSSStyleSheet | null = null;
  return {
    add(style: string) {
      if (counter === 0 && typeof document !== "undefined" && "adoptedStyleSheets" in document) {
        try {
          const s = new CSSStyleSheet();
          s.replaceSync(style);
          document.adoptedStyleSheets = [...document.adoptedStyleSheets, s];
          sheet = s;
        } catch {
          sheet = null;
        }
      }
      counter++;
    },
    remove() {
      counter--;
      if (!counter && sheet) {
        const s = sheet;
        document.adoptedStyleSheets = document.adoptedStyleSheets.filter((x) => x !== s);
        sheet = null;
      }
    },
  };
}

export function styleHookSingleton() {
  const sheet = stylesheetSingleton();
  const useStyle = (styles: string, isDynamic?: boolean) => {
    useEffect(() => {
      sheet.add(styles);
      return () => sheet.remove();
      // Same contract as the original: the styles are re-applied only when dynamic.
      // eslint-disable-next-line react-hooks/exhaustive-deps
    }, [styles && isDynamic]);
  };
  return useStyle;
}

export function styleSingleton() {
  const useStyle = styleHookSingleton();
  return function Sheet({ styles, dynamic }: { styles: string; dynamic?: boolean }) {
    useStyle(styles, dynamic);
    return null;
  };
}
