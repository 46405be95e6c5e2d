import { ComingSoon } from "./comingSoon.js";

/** Placeholder until the Messages screen is built (see docs/console.md, "Adding a screen"). */
export function Messages() {
  return <ComingSoon title="Messages" />;
}
