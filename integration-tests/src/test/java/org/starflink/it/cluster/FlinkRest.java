package org.starflink.it.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * Flink's REST API, as the Web UI and {@code flink run} use it: jar upload and run (the job's {@code main} runs in
 * the JobManager, on the cluster's configuration), job status, stop-with-savepoint, cancel, checkpoints, metrics
 * and exceptions. Plain HTTP + JSON, so what a test asserts is what any operator of the cluster sees.
 */
public final class FlinkRest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final String base;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    FlinkRest(String base) {
        this.base = base;
    }

    public String url() {
        return base;
    }

    /** POST /jars/upload: returns the jar's id on the cluster. */
    public String uploadJar(Path jar) {
        String boundary = "----starflink" + UUID.randomUUID();
        byte[] head = ("--" + boundary + "\r\nContent-Disposition: form-data; name=\"jarfile\"; filename=\""
                + jar.getFileName() + "\"\r\nContent-Type: application/x-java-archive\r\n\r\n")
                .getBytes(StandardCharsets.UTF_8);
        byte[] tail = ("\r\n--" + boundary + "--\r\n").getBytes(StandardCharsets.UTF_8);
        try {
            HttpRequest request = HttpRequest.newBuilder(URI.create(base + "/jars/upload"))
                    .timeout(Duration.ofMinutes(2))
                    .header("Content-Type", "multipart/form-data; boundary=" + boundary)
                    .POST(HttpRequest.BodyPublishers.concat(HttpRequest.BodyPublishers.ofByteArray(head),
                            HttpRequest.BodyPublishers.ofFile(jar), HttpRequest.BodyPublishers.ofByteArray(tail)))
                    .build();
            JsonNode reply = send(request, "upload " + jar);
            String file = reply.path("filename").asText();
            return file.substring(file.lastIndexOf('/') + 1);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + jar, e);
        }
    }

    /**
     * POST /jars/:id/run: runs the job jar's main class with these program arguments; returns the job id.
     *
     * @param savepoint         a savepoint or retained checkpoint to restore from, or null
     * @param flinkConfiguration Flink settings of this job on top of the cluster's (the request's
     *                          {@code flinkConfiguration}, as {@code flink run -D} gives them), e.g. its restart
     *                          strategy
     */
    public String runJar(String jarId, List<String> programArgs, int parallelism, String savepoint,
            Map<String, String> flinkConfiguration) {
        ObjectNode body = JSON.createObjectNode();
        body.putPOJO("programArgsList", programArgs);
        body.put("parallelism", parallelism);
        if (!flinkConfiguration.isEmpty()) {
            body.putPOJO("flinkConfiguration", flinkConfiguration);
        }
        if (savepoint != null) {
            body.put("savepointPath", savepoint);
            body.put("allowNonRestoredState", false);
        }
        return post("/jars/" + jarId + "/run", body, Duration.ofMinutes(3)).path("jobid").asText();
    }

    /** GET /jobs/:id. */
    public JsonNode job(String jobId) {
        return get("/jobs/" + jobId);
    }

    public String jobState(String jobId) {
        return job(jobId).path("state").asText();
    }

    /** The job is RUNNING and so is every one of its subtasks (deployed, restored, processing). */
    public boolean allTasksRunning(String jobId) {
        JsonNode job = job(jobId);
        if (!"RUNNING".equals(job.path("state").asText())) {
            return false;
        }
        for (JsonNode vertex : job.path("vertices")) {
            if (!"RUNNING".equals(vertex.path("status").asText())) {
                return false;
            }
            JsonNode tasks = vertex.path("tasks");
            if (tasks.path("RUNNING").asInt() != vertex.path("parallelism").asInt()) {
                return false;
            }
        }
        return true;
    }

    /** The job-level metric (numRestarts, ...), or -1 if it has none yet. */
    public long jobMetric(String jobId, String metric) {
        for (JsonNode m : get("/jobs/" + jobId + "/metrics?get=" + enc(metric))) {
            if (metric.equals(m.path("id").asText())) {
                return (long) Double.parseDouble(m.path("value").asText());
            }
        }
        return -1;
    }

    /**
     * An operator metric summed over the subtasks of the vertices that have it (the metric's id at vertex level is
     * "operator name.metric"); -1 where no vertex reports it yet.
     */
    public long operatorMetricSum(String jobId, String metric) {
        long sum = 0;
        boolean found = false;
        for (double value : operatorMetric(jobId, metric, "sum")) {
            sum += (long) value;
            found = true;
        }
        return found ? sum : -1;
    }

    /** An operator metric's largest value over the subtasks of the vertices that have it; -1 where none reports it. */
    public long operatorMetricMax(String jobId, String metric) {
        long max = -1;
        for (double value : operatorMetric(jobId, metric, "max")) {
            max = Math.max(max, (long) value);
        }
        return max;
    }

    /** The metric aggregated ({@code agg}: sum, max, min, avg) over each vertex's subtasks, per vertex having it. */
    private List<Double> operatorMetric(String jobId, String metric, String agg) {
        List<Double> values = new ArrayList<>();
        for (JsonNode vertex : job(jobId).path("vertices")) {
            String prefix = "/jobs/" + jobId + "/vertices/" + vertex.path("id").asText() + "/subtasks/metrics";
            List<String> ids = new ArrayList<>();
            for (JsonNode m : get(prefix)) {
                String id = m.path("id").asText();
                if (id.endsWith("." + metric)) {
                    ids.add(id);
                }
            }
            if (ids.isEmpty()) {
                continue;
            }
            for (JsonNode m : get(prefix + "?agg=" + agg + "&get=" + enc(String.join(",", ids)))) {
                values.add(m.path(agg).asDouble());
            }
        }
        return values;
    }

    /** A TaskManager's metric (Status.JVM.Memory.Heap.Used, ...), or -1 if it has none yet. */
    public long taskManagerMetric(String taskManagerId, String metric) {
        for (JsonNode m : get("/taskmanagers/" + taskManagerId + "/metrics?get=" + enc(metric))) {
            if (metric.equals(m.path("id").asText())) {
                return (long) Double.parseDouble(m.path("value").asText());
            }
        }
        return -1;
    }

    /** GET /jobs/:id/checkpoints: the full state size of the latest completed checkpoint (bytes), -1 if none. */
    public long latestCheckpointStateSize(String jobId) {
        JsonNode latest = get("/jobs/" + jobId + "/checkpoints").path("latest").path("completed");
        return latest.isObject() ? latest.path("state_size").asLong(-1) : -1;
    }

    /** GET /jobs/:id/checkpoints: where the latest completed checkpoint is retained, or null if none is. */
    public String latestCheckpointPath(String jobId) {
        JsonNode latest = get("/jobs/" + jobId + "/checkpoints").path("latest").path("completed");
        return latest.hasNonNull("external_path") ? latest.path("external_path").asText() : null;
    }

    /** GET /jobs/:id/checkpoints: the number of completed checkpoints. */
    public long completedCheckpoints(String jobId) {
        return get("/jobs/" + jobId + "/checkpoints").path("counts").path("completed").asLong();
    }

    /** How many failures the job's exception history holds (each made it restart or fail). */
    public int failureCount(String jobId) {
        return get("/jobs/" + jobId + "/exceptions").path("exceptionHistory").path("entries").size();
    }

    /** The exceptions that made the job restart or fail, newest first: "name: message" per line. */
    public String exceptions(String jobId) {
        StringBuilder out = new StringBuilder();
        try {
            for (JsonNode entry : get("/jobs/" + jobId + "/exceptions").path("exceptionHistory").path("entries")) {
                String stack = entry.path("stacktrace").asText();
                out.append(entry.path("taskManagerLocation").asText("?")).append(": ")
                        .append(stack.lines().findFirst().orElse(entry.path("exceptionName").asText()))
                        .append('\n');
            }
        } catch (RuntimeException e) {
            out.append("(no exceptions: ").append(e.getMessage()).append(")");
        }
        return out.toString();
    }

    /**
     * POST /jobs/:id/stop (stop-with-savepoint, no drain), waiting for the savepoint; returns its location.
     */
    public String stopWithSavepoint(String jobId, String targetDirectory, Duration timeout) {
        ObjectNode body = JSON.createObjectNode();
        body.put("targetDirectory", targetDirectory);
        body.put("drain", false);
        body.put("formatType", "CANONICAL");
        String trigger = post("/jobs/" + jobId + "/stop", body, Duration.ofSeconds(30)).path("request-id").asText();
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            JsonNode status = get("/jobs/" + jobId + "/savepoints/" + trigger);
            if ("COMPLETED".equals(status.path("status").path("id").asText())) {
                JsonNode operation = status.path("operation");
                if (operation.has("location")) {
                    return operation.path("location").asText();
                }
                throw new IllegalStateException("stop-with-savepoint of " + jobId + " failed: "
                        + operation.path("failure-cause").path("stack-trace").asText().lines().findFirst()
                        .orElse(operation.toString()));
            }
            KafkaBrokerProcess.sleep(200);
        }
        throw new IllegalStateException("stop-with-savepoint of " + jobId + " not done after " + timeout);
    }

    /** PATCH /jobs/:id?mode=cancel. */
    public void cancel(String jobId) {
        HttpRequest request = HttpRequest.newBuilder(URI.create(base + "/jobs/" + jobId + "?mode=cancel"))
                .timeout(Duration.ofSeconds(30)).method("PATCH", HttpRequest.BodyPublishers.noBody()).build();
        send(request, "cancel " + jobId);
    }

    /** GET /overview: task managers, slots, jobs. */
    public JsonNode overview() {
        return get("/overview");
    }

    /** The registered TaskManagers' ids. */
    public List<String> taskManagerIds() {
        List<String> ids = new ArrayList<>();
        for (JsonNode tm : get("/taskmanagers").path("taskmanagers")) {
            ids.add(tm.path("id").asText());
        }
        return ids;
    }

    JsonNode get(String path) {
        return send(HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(30)).GET().build(),
                "GET " + path);
    }

    private JsonNode post(String path, JsonNode body, Duration timeout) {
        try {
            return send(HttpRequest.newBuilder(URI.create(base + path)).timeout(timeout)
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body))).build(), "POST " + path);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private JsonNode send(HttpRequest request, String what) {
        try {
            HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() / 100 != 2) {
                JsonNode errors = parse(response.body()).path("errors");
                String first = errors.isArray() && errors.size() > 0 ? errors.get(0).asText() : response.body();
                throw new IllegalStateException(what + ": HTTP " + response.statusCode() + ": "
                        + first.lines().limit(12).reduce((a, b) -> a + " | " + b).orElse(""));
            }
            return parse(response.body());
        } catch (IOException e) {
            throw new IllegalStateException(what + ": " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(what + ": interrupted", e);
        }
    }

    private static JsonNode parse(String body) {
        try {
            return body.isBlank() ? JSON.createObjectNode() : JSON.readTree(body);
        } catch (IOException e) {
            return JSON.createObjectNode().put("raw", body);
        }
    }

    private static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }
}
