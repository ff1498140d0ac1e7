// A front end that knows the menu content fields: prices and defaults in context, tags,
// allergens, calories, image and schedule, and the sync fields: external id, sold out. Reads the menu call's body on standard input;
// prints what it parsed, one fact per line.
import com.google.gson.Gson;
import com.google.gson.annotations.SerializedName;
import com.google.gson.reflect.TypeToken;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.List;

public class ContentClient {
    static class Window {
        List<String> days;
        String start;
        String end;
    }

    static class Item {
        long id;
        String name;
        Integer price;
        String currency;
        @SerializedName("is_default") boolean isDefault;
        boolean available;
        @SerializedName("max_choices") Integer maxChoices;
        List<Window> schedule;
        @SerializedName("image_url") String imageUrl;
        List<String> tags;
        List<String> allergens;
        Integer calories;
        @SerializedName("external_id") String externalId;
        @SerializedName("sold_out") boolean soldOut;
        // RFC 3339 text; a client parses it with java.time.OffsetDateTime.
        @SerializedName("sold_out_until") String soldOutUntil;
        List<Item> modifiers;
    }

    static Item named(List<Item> items, String name) {
        for (Item item : items) {
            if (item.name.equals(name)) return item;
        }
        throw new IllegalStateException("no item " + name);
    }

    public static void main(String[] args) {
        InputStreamReader body = new InputStreamReader(System.in, StandardCharsets.UTF_8);
        List<Item> menu = new Gson().fromJson(body, new TypeToken<List<Item>>() {}.getType());
        Item burger = named(menu, "Classic Burger");
        Item toppings = named(burger.modifiers, "Extra toppings");
        Item salad = named(menu, "Garden Salad");
        Item side = named(burger.modifiers, "Choose your side");
        String defaults = "";
        for (Item choice : side.modifiers) {
            if (choice.isDefault) defaults += choice.name;
        }
        Item pancakes = named(menu, "Buttermilk Pancakes");
        Window window = pancakes.schedule.get(0);
        System.out.println("bacon.burger=" + named(toppings.modifiers, "Bacon").price);
        System.out.println("bacon.salad=" + named(salad.modifiers, "Bacon").price);
        System.out.println("side.defaults=" + defaults + ":" + side.maxChoices);
        System.out.println("burger=" + burger.calories + ":" + burger.imageUrl + ":" + burger.allergens + ":" + burger.tags + ":" + burger.isDefault);
        System.out.println("side_salad.tags=" + named(menu, "Side Salad").tags);
        System.out.println("pancakes=" + pancakes.available + ":" + window.days.size() + ":" + window.start + "-" + window.end);
        System.out.println("cheesecake.calories=" + named(menu, "New York Cheesecake").calories);
        System.out.println("burger.sync=" + burger.externalId + ":" + burger.soldOut + ":" + burger.soldOutUntil + ":" + burger.available);
    }
}
