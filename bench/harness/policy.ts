/**
 * Bench policies shaped like Casbin's own RBAC benchmark
 * (BenchmarkRBACModelLarge: 100,000 users in 10,000 roles, 110,000 lines):
 * one `p` line per role granting GET on its own path pattern, and users in
 * roles by tens (user-j is in role-⌊j/10⌋, as in Casbin's benchmark).
 * `rules` is the total line count.
 *
 *   p, role-7, /api/7/*, GET, allow
 *   g, user-71, role-7
 *
 * Because roles go by tens, user-0 … user-89 get the same grants in every
 * policy of at least 100 lines, so one token file serves every policy size.
 */

/** The shape of a generated policy. */
export interface RbacShape {
  readonly rules: number;
  readonly roles: number;
  readonly users: number;
}

/** Roles and users for a policy of `rules` lines (1 role per 11 lines, like Casbin's). */
export function rbacShape(rules: number): RbacShape {
  if (!Number.isInteger(rules) || rules < 100) throw new TypeError('rules must be an integer >= 100');
  const roles = Math.round(rules / 11);
  return { rules, roles, users: rules - roles };
}

const roleOf = (shape: RbacShape, j: number): number => Math.min(Math.floor(j / 10), shape.roles - 1);

/** The policy.csv text. */
export function rbacPolicy(shape: RbacShape): string {
  const lines: string[] = [];
  for (let i = 0; i < shape.roles; i++) lines.push(`p, role-${i}, /api/${i}/*, GET, allow`);
  for (let j = 0; j < shape.users; j++) lines.push(`g, user-${j}, role-${roleOf(shape, j)}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The same grants as an HAProxy map, `user-j <role path segment>`: the proxy
 * checks that the path's second segment is the caller's role's (a tree
 * lookup, like meshgate's index, not a scan).
 */
export function rbacHaproxyMap(shape: RbacShape): string {
  const lines: string[] = [];
  for (let j = 0; j < shape.users; j++) lines.push(`user-${j} ${roleOf(shape, j)}`);
  return `${lines.join('\n')}\n`;
}

/** Users whose grants are the same in every policy of >= 100 lines. */
export const SHARED_USERS = 90;

/** The allowed (sub, path) of user `j mod SHARED_USERS`, valid in every bench policy. */
export function allowedRequest(j: number): { sub: string; path: string } {
  const u = j % SHARED_USERS;
  return { sub: `user-${u}`, path: `/api/${Math.floor(u / 10)}/items` };
}
