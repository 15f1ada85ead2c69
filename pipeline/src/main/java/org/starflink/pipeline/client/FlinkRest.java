package org.starflink.pipeline.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;

/** Reads a running job's metrics through Flink's REST API (the Web UI's endpoints). */
public final class FlinkRest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final String baseUrl;

    /** @param baseUrl e.g. http://localhost:8081 */
    public FlinkRest(String baseUrl) {
        this.baseUrl = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
    }

    /** The id of a RUNNING job with this name. */
    public Optional<String> runningJob(String name) throws IOException, InterruptedException {
        for (JsonNode job : get("/jobs/overview").get("jobs")) {
            if (job.get("name").asText().equals(name) && job.get("state").asText().equals("RUNNING")) {
                return Optional.of(job.get("jid").asText());
            }
        }
        return Optional.empty();
    }

    /** The id and parallelism of the job vertex whose (chain) name contains {@code fragment}. */
    public Optional<Vertex> vertex(String jobId, String fragment) throws IOException, InterruptedException {
        for (JsonNode v : get("/jobs/" + jobId).get("vertices")) {
            if (v.get("name").asText().contains(fragment)) {
                return Optional.of(new Vertex(v.get("id").asText(), v.get("parallelism").asInt()));
            }
        }
        return Optional.empty();
    }

    public record Vertex(String id, int parallelism) {
    }

    /**
     * The metrics of one subtask whose ids pass {@code filter}, keyed by their last name segment (ids look like
     * {@code <operator>.starflink.block.blocksEncoded}).
     */
    public Map<String, Double> subtaskMetrics(String jobId, Vertex vertex, int subtask, Predicate<String> filter)
            throws IOException, InterruptedException {
        String path = "/jobs/" + jobId + "/vertices/" + vertex.id() + "/subtasks/" + subtask + "/metrics";
        List<String> ids = new ArrayList<>();
        for (JsonNode metric : get(path)) {
            if (filter.test(metric.get("id").asText())) {
                ids.add(metric.get("id").asText());
            }
        }
        Map<String, Double> values = new HashMap<>();
        if (ids.isEmpty()) {
            return values;
        }
        for (JsonNode metric : get(path + "?get=" + URLEncoder.encode(String.join(",", ids), StandardCharsets.UTF_8))) {
            String id = metric.get("id").asText();
            values.put(id.substring(id.lastIndexOf('.') + 1), metric.get("value").asDouble());
        }
        return values;
    }

    /** A counter summed over every subtask of a vertex. */
    public double sum(String jobId, Vertex vertex, String metricSuffix) throws IOException, InterruptedException {
        double total = 0;
        String name = metricSuffix.substring(metricSuffix.lastIndexOf('.') + 1);
        for (int s = 0; s < vertex.parallelism(); s++) {
            total += subtaskMetrics(jobId, vertex, s, id -> id.endsWith(metricSuffix)).getOrDefault(name, 0.0);
        }
        return total;
    }

    private JsonNode get(String path) throws IOException, InterruptedException {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(baseUrl + path))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new IOException("GET " + baseUrl + path + ": HTTP " + response.statusCode());
        }
        return JSON.readTree(response.body());
    }
}
