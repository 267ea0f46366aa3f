// session.js: the signed-in user (GET /me) shared with every page.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export const Session = createContext({ me: null, reloadMe: () => {} });

/** The session: {me, reloadMe}. */
export const useSession = () => useContext(Session);

/** The caller's role on a project slug or id ('' when unknown). */
export function roleOf(me, project) {
  if (!me) return '';
  const p = me.projects.find((x) => x.slug === project || String(x.id) === String(project));
  if (me.isAdmin) return 'owner';
  return p ? p.role : '';
}

const RANK = { viewer: 1, member: 2, admin: 3, owner: 4 };
/** True when role is at least min. */
export const atLeast = (role, min) => (RANK[role] || 0) >= RANK[min];
