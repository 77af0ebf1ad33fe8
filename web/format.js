// Display helpers: money stays a decimal string from the API, dates in the reader's locale.

export function money(amount, currency = "EUR") {
  const [whole, cents = "00"] = String(amount).split(".");
  return `${whole}.${cents.padEnd(2, "0")} ${currency}`;
}

export function when(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export const FINAL_STATUSES = new Set(["completed", "rejected", "cancelled"]);
export const CANCELLABLE = new Set(["pending", "validated"]);

export function shortId(id) {
  return String(id).slice(0, 8);
}

/** "19.90" -> 1990: sums of money are done in whole cents, never in floats. */
export function cents(amount) {
  const [whole, fraction = ""] = String(amount).split(".");
  return Number.parseInt(whole, 10) * 100 + Number.parseInt(fraction.padEnd(2, "0").slice(0, 2), 10);
}

export function fromCents(total) {
  const whole = Math.floor(total / 100);
  return `${whole}.${String(total % 100).padStart(2, "0")}`;
}
