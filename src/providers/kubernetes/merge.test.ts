import { describe, expect, it } from 'vitest';
import type { V1PodTemplateSpec } from '@kubernetes/client-node';
import { mergePodTemplate } from './merge.js';

const base: V1PodTemplateSpec = {
  metadata: { labels: { a: '1' }, annotations: { x: 'base' } },
  spec: {
    restartPolicy: 'Never',
    nodeSelector: { pool: 'default' },
    tolerations: [{ key: 'k', operator: 'Exists' }],
    containers: [
      {
        name: 'runner',
        image: 'runner:1',
        env: [
          { name: 'A', value: '1' },
          { name: 'B', value: '2' },
        ],
        volumeMounts: [{ name: 'work', mountPath: '/work' }],
        resources: { requests: { cpu: '1' } },
      },
    ],
    volumes: [{ name: 'work', emptyDir: {} }],
  },
};

describe('mergePodTemplate', () => {
  it('merges maps key by key, containers by name, env by name and mounts by path', () => {
    const merged = mergePodTemplate(base, {
      metadata: { labels: { b: '2' }, annotations: { x: 'over' } },
      spec: {
        nodeSelector: { zone: 'a' },
        priorityClassName: 'ci',
        containers: [
          {
            name: 'runner',
            env: [
              { name: 'B', value: 'changed' },
              { name: 'C', value: '3' },
            ],
            volumeMounts: [{ name: 'cache', mountPath: '/cache' }],
            resources: { requests: { memory: '2Gi' }, limits: { cpu: '2' } },
          },
          { name: 'extra', image: 'busybox' },
        ],
        volumes: [{ name: 'cache', emptyDir: {} }],
      },
    });
    expect(merged.metadata).toEqual({ labels: { a: '1', b: '2' }, annotations: { x: 'over' } });
    expect(merged.spec?.nodeSelector).toEqual({ pool: 'default', zone: 'a' });
    expect(merged.spec?.priorityClassName).toBe('ci');
    const runner = merged.spec?.containers[0];
    expect(runner?.image).toBe('runner:1');
    expect(runner?.env).toEqual([
      { name: 'A', value: '1' },
      { name: 'B', value: 'changed' },
      { name: 'C', value: '3' },
    ]);
    expect(runner?.volumeMounts?.map((m) => m.mountPath)).toEqual(['/work', '/cache']);
    expect(runner?.resources).toEqual({ requests: { cpu: '1', memory: '2Gi' }, limits: { cpu: '2' } });
    expect(merged.spec?.containers.map((c) => c.name)).toEqual(['runner', 'extra']);
    expect(merged.spec?.volumes?.map((v) => v.name)).toEqual(['work', 'cache']);
  });

  it('appends tolerations without duplicates and never mutates its inputs', () => {
    const before = structuredClone(base);
    const overlay = {
      spec: {
        tolerations: [
          { key: 'k', operator: 'Exists' },
          { key: 'gpu', operator: 'Exists', effect: 'NoSchedule' },
        ],
      },
    };
    const overlayBefore = structuredClone(overlay);
    const merged = mergePodTemplate(base, overlay);
    expect(merged.spec?.tolerations).toEqual([
      { key: 'k', operator: 'Exists' },
      { key: 'gpu', operator: 'Exists', effect: 'NoSchedule' },
    ]);
    merged.spec!.containers[0]!.env!.push({ name: 'Z', value: 'z' });
    expect(base).toEqual(before);
    expect(overlay).toEqual(overlayBefore);
  });

  it('returns a copy of the defaults when there is no template', () => {
    const merged = mergePodTemplate(base, undefined);
    expect(merged).toEqual(base);
    expect(merged).not.toBe(base);
  });
});
