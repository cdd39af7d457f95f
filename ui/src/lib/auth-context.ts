import { createContext, useContext } from "react";
import type { ServerConfig } from "./types";

export const AuthContext = createContext<ServerConfig>({ auth_required: false, has_internal_auth: false, oidc_providers: [] });
export const useServerConfig = () => useContext(AuthContext);
