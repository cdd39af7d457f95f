import { createContext, useContext } from "react";
import type { Me } from "./types";

/** The signed-in user (from GET /api/auth/me), or null when the server has
 * no authentication or the answer has not arrived. */
export const MeContext = createContext<Me | null>(null);
export const useMe = () => useContext(MeContext);
