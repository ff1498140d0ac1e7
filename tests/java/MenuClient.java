// A front end's view of the menu call: Gson parses the body straight into List<Item>.
// Reads the JSON body on standard input; prints what it parsed, one fact per line.
import com.google.gson.Gson;
import com.google.gson.annotations.SerializedName;
import com.google.gson.reflect.TypeToken;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.util.List;

public class MenuClient {
    static class Item {
        long id;
        String name;
        String description;
        String category;
        long price;
        String currency;
        boolean available;
        boolean standalone;
        @SerializedName("min_choices") int minChoices;
        @SerializedName("max_choices") Integer maxChoices;
        List<Item> modifiers;
    }

    static int depth(Item item) {
        int deepest = 0;
        for (Item modifier : item.modifiers) {
            deepest = Math.max(deepest, 1 + depth(modifier));
        }
        return deepest;
    }

    public static void main(String[] args) {
        report(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    }

    static void report(Reader body) {
        List<Item> menu = new Gson().fromJson(body, new TypeToken<List<Item>>() {}.getType());
        Item first = menu.get(0);
        int deepest = 0;
        long nullModifiers = 0;
        for (Item item : menu) {
            deepest = Math.max(deepest, depth(item));
            if (item.modifiers == null) nullModifiers++;
        }
        System.out.println("items=" + menu.size());
        System.out.println("first=" + first.id + ":" + first.name + ":" + first.price + ":" + first.currency);
        System.out.println("first.modifiers=" + first.modifiers.size());
        Item side = first.modifiers.get(1);
        System.out.println("side=" + side.name + ":" + side.minChoices + ":" + side.maxChoices);
        System.out.println("depth=" + deepest);
        System.out.println("null_modifiers=" + nullModifiers);
    }
}
