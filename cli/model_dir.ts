import { loadTrainedModel, type TrainedModel } from "@webtune/core";

/** The two files of a trained model in a run directory. */
interface ModelDirFiles {
  configPath: string;
  configJson: string;
  weightsPath: string;
  weights: Uint8Array;
}

/** Reads `DIR/config.json` and `DIR/model.safetensors`, naming the missing file if any. */
async function readModelDir(dir: string): Promise<ModelDirFiles> {
  const configPath = `${dir}/config.json`, weightsPath = `${dir}/model.safetensors`;
  const read = async <T>(path: string, f: (p: string) => Promise<T>) => {
    try {
      return await f(path);
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound
        ? "missing (is this a webtune run directory?)"
        : (e as Error).message;
      throw new Error(`${path}: ${why}`);
    }
  };
  return {
    configPath,
    configJson: await read(configPath, Deno.readTextFile),
    weightsPath,
    weights: await read(weightsPath, Deno.readFile),
  };
}

/**
 * Loads the trained model of a run directory (`model.safetensors` + `config.json`), as
 * `predict` and `eval` use it; errors name the file.
 */
export async function openModelDir(dir: string): Promise<TrainedModel> {
  const files = await readModelDir(dir);
  return loadTrainedModel(files.configJson, files.weights, files.weightsPath, files.configPath);
}
