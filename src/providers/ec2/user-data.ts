/**
 * The start script as user data for `imageId` launches: the block's `userData` settings (schema.ts) and the
 * scale set's parameter prefix, rendered by renderUserData (src/aws/user-data.ts). The renderer sees names, places and
 * settings only, never a registration; the provider still refuses rendered user data that contains the secret.
 */
import type { UserDataSettings } from '../../aws/user-data.js';
import { renderUserData } from '../../aws/user-data.js';
import type { Ec2UserDataRenderer } from './ec2-provider.js';
import type { Ec2UserDataSettings } from './schema.js';

/** The renderer's settings for a prefix and a block's `userData` (durations in ms become whole seconds). */
export function userDataSettingsOf(
  parameterPrefix: string,
  settings: Ec2UserDataSettings | undefined,
): UserDataSettings {
  const s = settings ?? {};
  const hooks = s.hooks;
  return {
    ssmPrefix: parameterPrefix,
    ...(s.runnerDir !== undefined ? { runnerDir: s.runnerDir } : {}),
    ...(s.runAs !== undefined ? { runAs: s.runAs } : {}),
    ...(hooks !== undefined && (hooks.jobStarted !== undefined || hooks.jobCompleted !== undefined)
      ? {
          hooks: {
            ...(hooks.jobStarted !== undefined ? { jobStarted: hooks.jobStarted } : {}),
            ...(hooks.jobCompleted !== undefined ? { jobCompleted: hooks.jobCompleted } : {}),
          },
        }
      : {}),
    ...(s.preRunnerScript !== undefined ? { preRunnerScript: s.preRunnerScript } : {}),
    ...(s.shutdownCommand !== undefined ? { shutdownCommand: s.shutdownCommand } : {}),
    ...(s.parameterTimeout !== undefined
      ? { parameterTimeoutSeconds: Math.max(1, Math.ceil(s.parameterTimeout / 1000)) }
      : {}),
  };
}

/** The default renderer of the ec2 module: runner-fleet's start script with the block's settings. */
export const renderEc2UserData: Ec2UserDataRenderer = (input) =>
  renderUserData(userDataSettingsOf(input.parameterPrefix, input.settings));
