// The one import point of the vendored Preact + htm (web/vendor, checksums in SHA256SUMS).
export {
  html,
  render,
  useCallback,
  useEffect,
  useMemo,
  useRef,
  useState,
} from "./vendor/htm-preact-standalone.module.js";
