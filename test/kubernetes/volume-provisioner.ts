/**
 * A stand-in volume provisioner for the test control plane, which has no storage driver: kubernetes-mode runner
 * pods ask for an ephemeral PersistentVolumeClaim for their work directory and stay unschedulable until it is
 * bound. For each pending claim of runner-fleet in the namespace this binds a new hostPath PersistentVolume
 * (nothing is ever written: kwok runs no containers), and deletes the volume once its claim is gone.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { CoreV1Api } from '@kubernetes/client-node';
import { LABEL_FLEET } from '../../src/kubernetes/labels.js';

export interface VolumeProvisioner {
  readonly provisioned: number;
  stop(): Promise<void>;
}

export function startVolumeProvisioner(adminKubeConfig: KubeConfig, namespace: string): VolumeProvisioner {
  const core = adminKubeConfig.makeApiClient(CoreV1Api);
  let stopped = false;
  let provisioned = 0;
  const volumeName = (claimUid: string) => `rf-test-${claimUid}`;
  const loop = (async () => {
    while (!stopped) {
      try {
        const claims = await core.listNamespacedPersistentVolumeClaim({
          namespace,
          labelSelector: LABEL_FLEET,
        });
        for (const claim of claims.items) {
          const uid = claim.metadata?.uid;
          if (!uid || claim.status?.phase !== 'Pending' || claim.spec?.volumeName) continue;
          await core
            .createPersistentVolume({
              body: {
                metadata: { name: volumeName(uid), labels: { 'runner-fleet.test/volume': namespace } },
                spec: {
                  capacity: { storage: claim.spec?.resources?.requests?.storage ?? '1Gi' },
                  accessModes: claim.spec?.accessModes ?? ['ReadWriteOnce'],
                  persistentVolumeReclaimPolicy: 'Delete',
                  ...(claim.spec?.storageClassName ? { storageClassName: claim.spec.storageClassName } : {}),
                  hostPath: { path: `/tmp/${volumeName(uid)}` },
                  claimRef: { namespace, name: claim.metadata?.name, uid },
                },
              },
            })
            .then(() => provisioned++)
            .catch(() => undefined);
        }
        // Volumes whose claim is gone (the runner pod was deleted): remove them.
        const volumes = await core.listPersistentVolume({
          labelSelector: `runner-fleet.test/volume=${namespace}`,
        });
        for (const pv of volumes.items) {
          if (pv.status?.phase === 'Released' || pv.status?.phase === 'Failed') {
            await core.deletePersistentVolume({ name: pv.metadata!.name! }).catch(() => undefined);
          }
        }
      } catch {
        // The namespace may be going away; try again.
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return {
    get provisioned() {
      return provisioned;
    },
    async stop() {
      stopped = true;
      await loop;
      const volumes = await core.listPersistentVolume({
        labelSelector: `runner-fleet.test/volume=${namespace}`,
      });
      await Promise.all(
        volumes.items.map((pv) =>
          core.deletePersistentVolume({ name: pv.metadata!.name! }).catch(() => undefined),
        ),
      );
    },
  };
}
