import type { FastifyInstance } from 'fastify';
import type { SchedulesLoop } from '../../loops/schedules.ts';
import { ApiError } from '../errors.ts';
import { errorSchema, nameParam } from '../schemas.ts';

export function scheduleRoutes(app: FastifyInstance, schedules: SchedulesLoop): void {
  app.get(
    '/v1/schedules',
    {
      config: { action: 'host.read' },
      schema: {
        tags: ['schedules'],
        summary: 'VM schedules and maintenance windows, with next times and last runs',
      },
    },
    async () => ({ schedules: await schedules.describe() }),
  );
  app.get(
    '/v1/schedules/:name',
    {
      config: { action: 'host.read' },
      schema: { tags: ['schedules'], params: nameParam, response: { '4xx': errorSchema } },
    },
    async (req) => {
      const { name } = req.params as { name: string };
      const s = (await schedules.describe()).find((x) => (x as { name: string }).name === name);
      if (!s) throw new ApiError(404, 'not_found', `no schedule or maintenance window named "${name}"`);
      return s;
    },
  );
}
