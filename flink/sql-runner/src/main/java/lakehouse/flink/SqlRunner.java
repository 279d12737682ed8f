package lakehouse.flink;

import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * Runs a streaming job's SQL statements in order; the last one (INSERT or statement set) submits
 * the job.
 *
 * <p>Each program argument is one statement, Base64 of its UTF-8 text, already rendered and split
 * by the control plane (lakehouse.streaming.render_job), so the Kubernetes path runs exactly the
 * statements the SQL Gateway path submits and this class parses nothing. Base64 because the
 * operator passes program arguments through the Flink configuration, where a list is split on
 * ';' and a statement set holds several ';' and line breaks.
 *
 * <p>Job settings (checkpoint interval, state TTL, parallelism, ...) are not arguments: they are
 * the resource's flinkConfiguration, which the TableEnvironment reads as its root configuration.
 */
public final class SqlRunner {

    private static final Logger LOG = LoggerFactory.getLogger(SqlRunner.class);

    private SqlRunner() {}

    public static void main(String[] args) {
        List<String> statements = decode(args);
        TableEnvironment tableEnv = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        boolean submitted = false;
        for (int i = 0; i < statements.size(); i++) {
            String statement = statements.get(i);
            // Only the first line: the WITH options of a CDC source hold credentials.
            LOG.info("statement {}/{}: {} ...", i + 1, statements.size(), firstLine(statement));
            TableResult result = tableEnv.executeSql(statement);
            submitted |= result.getJobClient().isPresent();
        }
        if (!submitted) {
            throw new IllegalStateException(
                    "none of the " + statements.size() + " statements submitted a job: "
                            + "the job's SQL must end with an INSERT or an EXECUTE STATEMENT SET");
        }
    }

    static List<String> decode(String[] args) {
        if (args.length == 0) {
            throw new IllegalArgumentException(
                    "no statements: pass each SQL statement as one Base64-encoded argument");
        }
        List<String> statements = new ArrayList<>(args.length);
        for (int i = 0; i < args.length; i++) {
            try {
                statements.add(new String(Base64.getDecoder().decode(args[i].trim()), StandardCharsets.UTF_8));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(
                        "argument " + (i + 1) + " is not Base64 (each argument is one encoded SQL statement)", e);
            }
        }
        return statements;
    }

    private static String firstLine(String statement) {
        String trimmed = statement.strip();
        int end = trimmed.indexOf('\n');
        return end < 0 ? trimmed : trimmed.substring(0, end);
    }
}
