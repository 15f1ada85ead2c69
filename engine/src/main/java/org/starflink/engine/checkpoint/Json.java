package org.starflink.engine.checkpoint;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import org.starflink.engine.EngineException;

/** Parses the JSON of a checkpoint (config files, safetensors headers) with one-line errors that name the source. */
final class Json {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private Json() {
    }

    /** The file's top-level object; a missing file, bad JSON or a non-object is an {@link EngineException}. */
    static JsonNode readObject(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new EngineException(file + " is missing", e);
        } catch (IOException e) {
            throw new EngineException(file + " cannot be read (" + oneLine(e.toString()) + ")", e);
        }
        return parseObject(bytes, file.toString());
    }

    /**
     * A top-level JSON object held in memory.
     *
     * @param source what the bytes are, starting messages ("/ckpt/a.safetensors: header")
     */
    static JsonNode parseObject(byte[] bytes, String source) {
        JsonNode root;
        try {
            root = MAPPER.readTree(bytes);
        } catch (JsonProcessingException e) {
            throw new EngineException(source + " is not JSON (" + oneLine(e.getOriginalMessage()) + ")", e);
        } catch (IOException e) {
            throw new EngineException(source + " is not JSON (" + oneLine(e.toString()) + ")", e);
        }
        if (root == null || !root.isObject()) {
            throw new EngineException(source + " is not a JSON object");
        }
        return root;
    }

    private static String oneLine(String text) {
        return text == null ? "" : text.replaceAll("\\s+", " ").trim();
    }
}
