import { ComingSoon } from "./comingSoon.js";

/** Placeholder until the Sources screen is built (see docs/console.md, "Adding a screen"). */
export function Sources() {
  return <ComingSoon title="Sources" />;
}
