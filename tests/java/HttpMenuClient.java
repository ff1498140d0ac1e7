// A mobile client's view of the menu call: it asks for gzip, as OkHttp does by default,
// decompresses what comes back gzip-encoded, and lets Gson parse the menu into List<Item>.
// Takes the menu's URL; prints the response's encoding, then MenuClient's facts.
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.zip.GZIPInputStream;

public class HttpMenuClient {
    public static void main(String[] args) throws Exception {
        HttpRequest request = HttpRequest.newBuilder(URI.create(args[0]))
            .header("Accept-Encoding", "gzip")
            .build();
        HttpResponse<InputStream> response = HttpClient.newHttpClient()
            .send(request, HttpResponse.BodyHandlers.ofInputStream());
        String encoding = response.headers().firstValue("Content-Encoding").orElse("identity");
        InputStream body = response.body();
        if (encoding.equals("gzip")) {
            body = new GZIPInputStream(body);
        }
        System.out.println("status=" + response.statusCode());
        System.out.println("encoding=" + encoding);
        MenuClient.report(new InputStreamReader(body, StandardCharsets.UTF_8));
    }
}
