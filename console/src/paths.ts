/** Where the console is served; every screen's URL starts with it. */
export const base = "/console";

/** `/console` + a route's path (`/` is the console's root itself). */
export const href = (path: string) => (path === "/" ? base : `${base}${path}`);
