import { useTitle } from "../layout.js";
import { href } from "../paths.js";

export function NotFound() {
  useTitle("Not found");
  return (
    <section>
      <h1>Not found</h1>
      <p>
        The console has no screen at this address. <a href={href("/")}>Go to the start</a>.
      </p>
    </section>
  );
}
