package org.starflink.engine.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.starflink.engine.EngineException;

/**
 * The tensors of a Hugging Face checkpoint directory: either one {@value #SINGLE_FILE} or several shards listed
 * by {@value #INDEX_FILE}, whose {@code weight_map} names the shard of every tensor (the single file wins when
 * both exist, as in transformers). Opening validates every shard's header and that each shard holds the tensors
 * the index assigns to it; the index, not the shards, decides which tensors exist.
 */
public final class ShardedSafetensors implements AutoCloseable {
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private final Path dir;
    /** Tensor name to the open shard that holds it. */
    private final Map<String, Safetensors> owners;
    private final Set<Safetensors> shards;

    private ShardedSafetensors(Path dir, Map<String, Safetensors> owners, Set<Safetensors> shards) {
        this.dir = dir;
        this.owners = owners;
        this.shards = shards;
    }

    public static ShardedSafetensors open(Path dir) {
        Path single = dir.resolve(SINGLE_FILE);
        Path index = dir.resolve(INDEX_FILE);
        if (Files.isRegularFile(single)) {
            Safetensors file = Safetensors.open(single);
            Map<String, Safetensors> owners = new LinkedHashMap<>();
            file.names().forEach(name -> owners.put(name, file));
            return new ShardedSafetensors(dir, owners, Set.of(file));
        }
        if (Files.isRegularFile(index)) {
            return openIndexed(dir, index);
        }
        throw new EngineException(dir + ": no " + SINGLE_FILE + " or " + INDEX_FILE
                + " (only safetensors checkpoints are supported)");
    }

    private static ShardedSafetensors openIndexed(Path dir, Path index) {
        JsonNode weightMap = Json.readObject(index).get("weight_map");
        if (weightMap == null || !weightMap.isObject() || weightMap.isEmpty()) {
            throw new EngineException(index + ": no weight_map");
        }
        Map<String, Safetensors> byFile = new LinkedHashMap<>();
        Map<String, Safetensors> owners = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, JsonNode> entry : weightMap.properties()) {
                String tensor = entry.getKey();
                String shardName = entry.getValue().asText();
                Path shardPath = dir.resolve(shardName);
                if (!Files.isRegularFile(shardPath)) {
                    throw new EngineException(index + ": tensor " + tensor + " is mapped to " + shardName
                            + ", which does not exist");
                }
                Safetensors shard = byFile.computeIfAbsent(shardName, name -> Safetensors.open(shardPath));
                if (!shard.contains(tensor)) {
                    throw new EngineException(index + ": tensor " + tensor + " is mapped to " + shardName
                            + ", which does not contain it");
                }
                owners.put(tensor, shard);
            }
        } catch (RuntimeException e) {
            byFile.values().forEach(Safetensors::close);
            throw e;
        }
        return new ShardedSafetensors(dir, owners, Set.copyOf(byFile.values()));
    }

    public Path dir() {
        return dir;
    }

    public Set<String> names() {
        return Collections.unmodifiableSet(owners.keySet());
    }

    public boolean contains(String name) {
        return owners.containsKey(name);
    }

    public Safetensors.TensorHeader header(String name) {
        return owner(name).header(name);
    }

    public float[] read(String name) {
        return owner(name).read(name);
    }

    public short[] readBf16(String name) {
        return owner(name).readBf16(name);
    }

    @Override
    public void close() {
        shards.forEach(Safetensors::close);
    }

    private Safetensors owner(String name) {
        Safetensors owner = owners.get(name);
        if (owner == null) {
            throw new EngineException(dir + ": missing tensor " + name);
        }
        return owner;
    }
}
